"""Problem 2: MNISTTwoView, its grid (Figure 1), and the MNIST files.

Every MNIST file a test touches is a copy in a temporary folder: the tests
never write to data/."""
import gzip
import hashlib
import os
import re
import shutil

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg

from drawing import drawn_texts
import pytest
import torch
import torchvision
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import transforms

MNIST = torchvision.datasets.MNIST
GZ_NAMES = [name for name, _ in MNIST.resources]
EXTRACTED_NAMES = [name[:-3] for name in GZ_NAMES]


class ListDataset(torch.utils.data.Dataset):
    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]


def random_digits(n, seed=0):
    """n random 28 x 28 uint8 images with a bright block (not blank)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    images[:, 8:20, 10:18] = 255
    return images


@pytest.fixture(scope="module")
def pil_base():
    """64 (PIL image, int label) pairs, like torchvision's MNIST items."""
    return ListDataset([(Image.fromarray(a), i % 10)
                        for i, a in enumerate(random_digits(64))])


def copy_raw(root, folder, names=GZ_NAMES + EXTRACTED_NAMES):
    """Copies of the real data/MNIST/raw files in folder/MNIST/raw."""
    raw = folder / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(root / "data" / "MNIST" / "raw" / name, raw / name)
    return raw


def gz_content(root, name):
    """The decompressed content of the real name.gz: the true file."""
    return gzip.decompress(
        (root / "data" / "MNIST" / "raw" / f"{name}.gz").read_bytes())


@pytest.fixture(scope="module")
def mnist_root(root, tmp_path_factory):
    folder = tmp_path_factory.mktemp("mnist")
    copy_raw(root, folder)
    return folder


@pytest.fixture(scope="module")
def mnist_train(hw2, mnist_root):
    return hw2.load_mnist(mnist_root, train=True)


@pytest.fixture
def no_download(hw2, monkeypatch):
    """hw2.download_url replaced: records its calls and fails as offline."""
    calls = []

    def offline(url, root, filename=None, md5=None, **kwargs):
        calls.append((url, md5))
        raise OSError("offline (test)")

    monkeypatch.setattr(hw2, "download_url", offline)
    return calls


# The dataset

def test_pipeline_is_the_assignments(hw2):
    steps = hw2.get_augment_pipeline().transforms
    assert [type(t) for t in steps] == [
        transforms.RandomResizedCrop, transforms.RandomAffine,
        transforms.ToTensor, transforms.RandomErasing]
    crop, affine, _, erase = steps
    assert crop.size == (28, 28) and crop.scale == (0.8, 1.0)
    assert affine.degrees == [-15.0, 15.0]
    assert affine.translate == (0.1, 0.1)
    assert affine.shear == [-10.0, 10.0]
    assert (erase.p, erase.scale, erase.ratio) == (0.2, (0.02, 0.2),
                                                   (0.3, 3.3))
    assert erase.value == hw2.ERASE_VALUE
    # a fresh pipeline per call: datasets do not share one object
    assert hw2.get_augment_pipeline() is not hw2.get_augment_pipeline()


def test_default_item_and_batch_are_x1_x2_y(hw2, pil_base):
    """The assignment's signature: (x1, x2, y), no original, batched by a
    DataLoader to (B, 1, 28, 28) twice and (B,) labels."""
    dataset = hw2.MNISTTwoView(pil_base)
    assert len(dataset) == len(pil_base)
    item = dataset[3]
    assert len(item) == 3 and item[2] == pil_base[3][1]
    batch = next(iter(DataLoader(dataset, batch_size=hw2.BATCH_SIZE)))
    assert len(batch) == 3
    x1, x2, y = batch
    for x in (x1, x2):
        assert x.shape == (hw2.BATCH_SIZE, 1, 28, 28)
        assert x.dtype == torch.float32
        assert 0 <= x.min() and x.max() <= 1
    assert y.dtype == torch.int64
    assert y.tolist() == [pil_base[i][1] for i in range(hw2.BATCH_SIZE)]


def test_return_original_batch_has_x0_first(hw2, pil_base):
    loader = DataLoader(hw2.MNISTTwoView(pil_base, return_original=True),
                        batch_size=hw2.BATCH_SIZE)
    x0, x1, x2, y = next(iter(loader))
    for x in (x0, x1, x2):
        assert x.shape == (hw2.BATCH_SIZE, 1, 28, 28)
        assert x.dtype == torch.float32
    to_tensor = transforms.ToTensor()
    for i in range(hw2.BATCH_SIZE):
        assert torch.equal(x0[i], to_tensor(pil_base[i][0]))  # unaugmented
    assert y.tolist() == [pil_base[i][1] for i in range(hw2.BATCH_SIZE)]


def test_views_are_two_calls_of_one_augment(hw2, pil_base):
    """x1 and x2 are two separate calls of the given pipeline on the same
    image, in that order."""
    calls = []

    def augment(image):
        calls.append(image)
        return torch.full((1, 28, 28), float(len(calls)))

    x1, x2, y = hw2.MNISTTwoView(pil_base, augment=augment)[5]
    assert len(calls) == 2 and calls[0] is calls[1] is pil_base[5][0]
    assert x1[0, 0, 0] == 1 and x2[0, 0, 0] == 2 and y == pil_base[5][1]


def test_two_views_differ(hw2, pil_base):
    torch.manual_seed(0)
    dataset = hw2.MNISTTwoView(pil_base)
    same = sum(torch.equal(x1, x2) for x1, x2, _ in
               (dataset[i] for i in range(len(dataset))))
    assert same <= 2  # two independent draws coincide only by rare chance


def test_same_seed_same_views(hw2, pil_base):
    dataset = hw2.MNISTTwoView(pil_base)
    torch.manual_seed(123)
    first = [dataset[i] for i in range(5)]
    torch.manual_seed(123)
    second = [dataset[i] for i in range(5)]
    torch.manual_seed(124)
    third = [dataset[i] for i in range(5)]
    for a, b in zip(first, second):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not all(torch.equal(a[0], c[0]) for a, c in zip(first, third))


def test_workers_draw_different_views(hw2):
    """With fork-started workers, identical base images get different
    views in different workers (each worker has its own torch seed)."""
    image = Image.fromarray(random_digits(1, seed=5)[0])
    dataset = hw2.MNISTTwoView(ListDataset([(image, 7)] * 8),
                               return_original=True)
    loader = DataLoader(dataset, batch_size=4, num_workers=2,
                        multiprocessing_context="fork",
                        generator=torch.Generator().manual_seed(0))
    batches = list(loader)  # batch 0 from worker 0, batch 1 from worker 1
    assert not torch.equal(batches[0][1], batches[1][1])
    assert torch.equal(batches[0][0], batches[1][0])  # same originals


# The MNIST files

def test_mnist_files_match_torchvision_md5s(root):
    raw = root / "data" / "MNIST" / "raw"
    for filename, md5 in MNIST.resources:
        path = raw / filename
        assert path.is_file(), f"missing {path}"
        assert hashlib.md5(path.read_bytes()).hexdigest() == md5, path


def test_real_mnist(hw2, mnist_train, root):
    labels = gz_content(root, "train-labels-idx1-ubyte")
    count = int.from_bytes(labels[4:8], "big")  # IDX header: item count
    assert len(mnist_train) == count
    assert [mnist_train[i][1] for i in range(3)] == list(labels[8:11])
    x1, x2, y = hw2.MNISTTwoView(mnist_train)[0]
    assert y == labels[8] and x1.shape == x2.shape == (1, 28, 28)
    x0 = hw2.MNISTTwoView(mnist_train, return_original=True)[0][0]
    images = gz_content(root, "train-images-idx3-ubyte")
    first = torch.frombuffer(bytearray(images[16:16 + 28 * 28]),
                             dtype=torch.uint8).reshape(1, 28, 28)
    assert torch.equal(x0, first / 255)  # ToTensor of the true image


def test_loads_the_test_split(hw2, mnist_root, root):
    labels = gz_content(root, "t10k-labels-idx1-ubyte")
    test = hw2.load_mnist(mnist_root, train=False)
    assert len(test) == int.from_bytes(labels[4:8], "big")
    assert test[0][1] == labels[8]


def test_correct_files_are_left_alone(hw2, root, tmp_path, no_download):
    raw = copy_raw(root, tmp_path)
    before = {name: os.stat(raw / name).st_mtime_ns
              for name in GZ_NAMES + EXTRACTED_NAMES}
    hw2.load_mnist(tmp_path)
    assert {name: os.stat(raw / name).st_mtime_ns for name in before} == before
    assert no_download == []  # nothing downloaded when all files are there


def change_one_byte(data):
    """The first label (offset 8 of an IDX1 file) changed to another
    digit: same size, a valid file, a wrong label."""
    data = bytearray(data)
    data[8] = (data[8] + 1) % 10
    return bytes(data)


@pytest.mark.parametrize("damage", [
    change_one_byte,
    lambda data: data[:len(data) // 2],
    lambda data: b"",
    None,  # missing
], ids=["one_byte_changed", "truncated", "empty", "missing"])
def test_damaged_extracted_file_is_extracted_again(hw2, root, tmp_path,
                                                   no_download, damage):
    """An extracted file that is not its .gz's content is rewritten from
    the .gz, so the label read back is the true one (issue 22.1: a file of
    the right size with one changed byte used to be kept)."""
    raw = copy_raw(root, tmp_path)
    labels = raw / "train-labels-idx1-ubyte"
    true = labels.read_bytes()
    assert true == gz_content(root, "train-labels-idx1-ubyte")
    if damage is None:
        labels.unlink()
    else:
        labels.write_bytes(damage(true))
    if damage is change_one_byte:
        assert labels.stat().st_size == len(true)
        # torchvision alone reads the wrong label, without complaint
        assert MNIST(tmp_path, train=True)[0][1] == (true[8] + 1) % 10
    dataset = hw2.load_mnist(tmp_path, train=True)
    assert labels.read_bytes() == true
    assert dataset[0][1] == true[8]
    assert no_download == []  # the .gz was there: extracted, not fetched


def test_corrupt_gz_is_named(hw2, root, tmp_path, no_download):
    raw = copy_raw(root, tmp_path, GZ_NAMES)
    gz = raw / "train-images-idx3-ubyte.gz"
    data = bytearray(gz.read_bytes())
    data[1000] ^= 0xFF  # same size, fails the MD5
    gz.write_bytes(bytes(data))
    md5 = dict(MNIST.resources)[gz.name]
    with pytest.raises(ValueError, match=re.escape(str(gz)) + " must be the "
                       rf"original file \(MD5 {md5}\), got a file that fails "
                       "its MD5"):
        hw2.load_mnist(tmp_path)
    assert gz.read_bytes() == bytes(data)  # the user's file is left alone
    assert no_download == []


def test_missing_mnist_says_which_files(hw2, tmp_path, no_download):
    """Offline and without the files: every mirror is tried for the first
    missing .gz, then a FileNotFoundError names the folder and all four
    files."""
    with pytest.raises(FileNotFoundError) as error:
        hw2.load_mnist(tmp_path)
    message = str(error.value)
    raw = tmp_path / "MNIST" / "raw"
    assert str(raw) in message
    assert all(name in message for name in GZ_NAMES)
    first, md5 = MNIST.resources[0]
    assert no_download == [(mirror + first, md5) for mirror in MNIST.mirrors]


def test_missing_gz_is_downloaded_from_the_next_mirror(hw2, root, tmp_path,
                                                      monkeypatch):
    """A missing .gz is fetched from torchvision's mirrors in order (the
    first failing here) with its MD5, then checked and extracted."""
    missing = "t10k-labels-idx1-ubyte.gz"
    raw = copy_raw(root, tmp_path,
                   [name for name in GZ_NAMES if name != missing])
    calls = []

    def download(url, folder, filename=None, md5=None, **kwargs):
        calls.append((url, md5))
        if url.startswith(MNIST.mirrors[0]) and len(MNIST.mirrors) > 1:
            raise OSError("first mirror down (test)")
        name = url.rsplit("/", 1)[1]
        shutil.copyfile(root / "data" / "MNIST" / "raw" / name,
                        os.path.join(folder, name))

    monkeypatch.setattr(hw2, "download_url", download)
    dataset = hw2.load_mnist(tmp_path, train=False)
    md5 = dict(MNIST.resources)[missing]
    assert calls == [(mirror + missing, md5)
                     for mirror in MNIST.mirrors[:2]]
    assert (raw / missing[:-3]).read_bytes() == gz_content(root, missing[:-3])
    assert dataset[0][1] == gz_content(root, missing[:-3])[8]


# Figure 1

@pytest.fixture
def figure1(hw2, pil_base, monkeypatch):
    figures = []
    monkeypatch.setattr(hw2, "save_figure",
                        lambda fig, name: figures.append(fig))
    loader = DataLoader(hw2.MNISTTwoView(pil_base, return_original=True),
                        batch_size=hw2.BATCH_SIZE)
    batch = next(iter(loader))
    hw2.show_two_view_batch(*batch)
    (fig,) = figures
    FigureCanvasAgg(fig)  # measured in pixels, whatever backend is set
    texts = drawn_texts(fig)
    yield fig, batch, texts
    hw2.plt.close(fig)


def test_grid_is_batch_rows_by_3_columns(hw2, figure1):
    """One row per example: original | x^(1) | x^(2), each tile the batch's
    own 28 x 28 pixels, 0.55 in or more on a side."""
    fig, (x0, x1, x2, y), _ = figure1
    (ax,) = fig.axes
    images = ax.get_images()
    assert len(images) == 3 * hw2.BATCH_SIZE
    lefts = sorted({im.get_extent()[0] for im in images})
    tops = sorted({im.get_extent()[3] for im in images})
    assert len(lefts) == 3 and len(tops) == hw2.BATCH_SIZE
    renderer = fig.canvas.get_renderer()
    for image in images:
        box = image.get_window_extent(renderer)
        # 0.55 in up to the rounding of the display transform
        assert min(box.width, box.height) / fig.dpi >= 0.55 * (1 - 1e-12)
        assert box.width == pytest.approx(box.height)  # square pixels
        column = lefts.index(image.get_extent()[0])
        row = tops.index(image.get_extent()[3])  # y grows downwards
        expected = (x0, x1, x2)[column][row, 0]
        assert torch.equal(torch.from_numpy(image.get_array().data), expected)
        assert image.get_clim() == (0, 1)  # same grey scale for every tile
    assert len({image.get_window_extent(renderer).bounds
                for image in images}) == len(images)  # no two overlap


def test_labels_under_originals_and_column_headings(hw2, figure1):
    fig, (x0, x1, x2, y), texts = figure1
    (ax,) = fig.axes
    renderer = fig.canvas.get_renderer()
    images = ax.get_images()
    left = min(im.get_extent()[0] for im in images)
    originals = sorted((im for im in images if im.get_extent()[0] == left),
                       key=lambda im: -im.get_window_extent(renderer).y0)
    labels = sorted(((t, box) for t, box in texts
                     if t.get_text().startswith("label ")),
                    key=lambda pair: -pair[1].y0)  # top row first
    assert [t.get_text() for t, _ in labels] == [f"label {int(v)}" for v in y]
    for row, (text, box) in enumerate(labels):
        image = originals[row].get_window_extent(renderer)
        assert image.x0 < (box.x0 + box.x1) / 2 < image.x1  # centred below
        assert box.y1 <= image.y0  # under its original, not on it
        assert text.get_fontsize() >= 8
    headings = {t.get_text(): box for t, box in texts
                if not t.get_text().startswith("label ")}
    assert list(headings) == ["original", "$x^{(1)}$", "$x^{(2)}$"]
    top_row = max(im.get_window_extent(renderer).y1 for im in images)
    columns = sorted({im.get_extent()[0] for im in images})
    for (text, box), column in zip(headings.items(), columns):
        tile = next(im.get_window_extent(renderer) for im in images
                    if im.get_extent()[0] == column)
        assert box.y0 >= top_row  # above the first row
        assert tile.x0 < (box.x0 + box.x1) / 2 < tile.x1  # over its column
    assert fig.texts == [] and ax.get_title() == ""  # no title inside


def test_figure1_texts_clear_of_tiles_and_each_other(figure1):
    """No text (label or heading, as drawn: the renderer's extents) covers
    part of a tile or of another text, so each label sits in the gap
    between its original and the next row."""
    fig, _, texts = figure1
    renderer = fig.canvas.get_renderer()
    tiles = [im.get_window_extent(renderer) for im in fig.axes[0].get_images()]
    for i, (text, box) in enumerate(texts):
        for tile in tiles:
            assert not box.overlaps(tile), text.get_text()
        for other, other_box in texts[i + 1:]:
            assert not box.overlaps(other_box), (text.get_text(),
                                                 other.get_text())
