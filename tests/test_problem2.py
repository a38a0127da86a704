"""Problem 2: MNISTTwoView, its grid, and the MNIST files."""
import hashlib
import re
import shutil

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import transforms


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
    return ListDataset([(Image.fromarray(a), i % 10)
                        for i, a in enumerate(random_digits(64))])


@pytest.fixture(scope="module")
def mnist_train(hw2, root):
    return hw2.load_mnist(root / "data", train=True, download=False)


def test_pipeline_is_the_assignments(hw2):
    steps = hw2.get_augment_pipeline().transforms
    assert [type(t).__name__ for t in steps] == [
        "RandomResizedCrop", "RandomAffine", "ToTensor", "RandomErasing"]
    crop, affine, to_tensor, erase = steps
    assert isinstance(crop, transforms.RandomResizedCrop)
    assert crop.size == (28, 28) and crop.scale == (0.8, 1.0)
    assert isinstance(affine, transforms.RandomAffine)
    assert affine.degrees == [-15.0, 15.0]
    assert affine.translate == (0.1, 0.1)
    assert affine.shear == [-10.0, 10.0]
    assert isinstance(to_tensor, transforms.ToTensor)
    assert isinstance(erase, transforms.RandomErasing)
    assert (erase.p, erase.scale, erase.ratio) == (0.2, (0.02, 0.2), (0.3, 3.3))
    assert erase.value == hw2.ERASE_VALUE  # grey: visible on black


def test_default_item_and_batch_are_x1_x2_y(hw2, pil_base):
    """The assignment's signature: (x1, x2, y), no original."""
    item = hw2.MNISTTwoView(pil_base)[3]
    assert len(item) == 3 and item[2] == pil_base[3][1]
    loader = DataLoader(hw2.MNISTTwoView(pil_base), batch_size=8)
    batch = next(iter(loader))
    assert len(batch) == 3
    x1, x2, y = batch
    for x in (x1, x2):
        assert x.shape == (8, 1, 28, 28) and x.dtype == torch.float32
        assert 0 <= x.min() and x.max() <= 1
    assert y.shape == (8,) and y.dtype == torch.int64
    assert y.tolist() == [pil_base[i][1] for i in range(8)]


def test_return_original_collate_batch_shapes(hw2, pil_base):
    loader = DataLoader(hw2.MNISTTwoView(pil_base, return_original=True),
                        batch_size=8)
    x0, x1, x2, y = next(iter(loader))
    for x in (x0, x1, x2):
        assert x.shape == (8, 1, 28, 28) and x.dtype == torch.float32
        assert 0 <= x.min() and x.max() <= 1
    assert y.shape == (8,) and y.dtype == torch.int64


def test_two_views_differ(hw2, pil_base):
    torch.manual_seed(0)
    items = [hw2.MNISTTwoView(pil_base)[i] for i in range(len(pil_base))]
    same = sum(torch.equal(x1, x2) for x1, x2, _ in items)
    assert same <= 2  # two independent draws coincide only by rare chance


@pytest.mark.parametrize("form", ["pil", "uint8_hw", "uint8_chw", "numpy",
                                  "float_chw"])
def test_x0_is_to_tensor_of_original(hw2, form):
    pixels = random_digits(1, seed=3)[0]
    image = {"pil": Image.fromarray(pixels),
             "uint8_hw": torch.from_numpy(pixels),
             "uint8_chw": torch.from_numpy(pixels)[None],
             "numpy": pixels,
             "float_chw": torch.from_numpy(pixels)[None] / 255}[form]
    x0, x1, x2, y = hw2.MNISTTwoView(ListDataset([(image, 4)]),
                                     return_original=True)[0]
    expected = transforms.ToTensor()(Image.fromarray(pixels))
    assert torch.equal(x0, expected)
    assert x1.shape == x2.shape == (1, 28, 28) and y == 4


def test_base_transform_is_used_for_x0(hw2, pil_base):
    normalize = transforms.Compose([transforms.ToTensor(),
                                    transforms.Normalize((0.5,), (0.5,))])
    x0 = hw2.MNISTTwoView(pil_base, base_transform=normalize,
                          return_original=True)[0][0]
    assert torch.equal(x0, normalize(pil_base[0][0]))


@pytest.mark.parametrize("make", [
    lambda p: torch.from_numpy(p)[None],
    lambda p: p,
    lambda p: torch.from_numpy(p).double()[None] / 255,
])
def test_base_sample_is_not_mutated(hw2, make):
    image = make(random_digits(1, seed=4)[0])
    before = image.copy() if isinstance(image, np.ndarray) else image.clone()
    dataset = hw2.MNISTTwoView(ListDataset([(image, 1)]),
                               return_original=True)
    for _ in range(20):  # RandomErasing (p=0.2) fires in some of these
        x0, x1, x2, _ = dataset[0]
        x0.zero_()  # and the returned x0 shares no memory with the base
    after = torch.as_tensor(image)
    assert torch.equal(after, torch.as_tensor(before))


def test_same_seed_same_views(hw2, pil_base):
    dataset = hw2.MNISTTwoView(pil_base)
    torch.manual_seed(123)
    first = [dataset[i] for i in range(5)]
    torch.manual_seed(123)
    second = [dataset[i] for i in range(5)]
    for a, b in zip(first, second):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


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
    views = [batch[1] for batch in batches]
    assert not torch.equal(views[0], views[1])
    assert torch.equal(batches[0][0], batches[1][0])  # same originals


def pil_of(dtype, mode=None):
    image = Image.fromarray(np.zeros((28, 28), dtype=dtype))
    return image if mode is None else image.convert(mode)


NORMALIZED = transforms.Normalize((0.1307,), (0.3081,))(
    torch.from_numpy(random_digits(1)[0])[None] / 255)


@pytest.mark.parametrize("bad, error, message", [
    ("not an image", TypeError, r"^image must be a PIL image, .* got str"),
    ([[0, 1], [2, 3]], TypeError, r"got list"),
    (torch.zeros(3, 28, 28, dtype=torch.uint8), ValueError,
     r"^image must be of shape \(28, 28\) or \(1, 28, 28\)"),
    (torch.zeros(28, 28, dtype=torch.int32), TypeError,
     r"uint8 or floating point, got torch.int32"),
    (pil_of(np.uint16), ValueError, "mode 'I;16'"),  # 16-bit grayscale
    (pil_of(np.float32), ValueError, "mode 'F'"),
    (pil_of(np.uint8, "RGB"), ValueError, "mode 'RGB'"),
    (torch.full((28, 28), 2.0), ValueError, r"in \[0, 1\]"),
    (NORMALIZED, ValueError, r"undo Normalize"),  # Normalize was applied
    (torch.full((28, 28), float("nan")), ValueError, r"in \[0, 1\]"),
    (torch.zeros(32, 32, dtype=torch.uint8), ValueError, r"got \(32, 32\)"),
    (Image.new("L", (32, 32)), ValueError, r"28 x 28 .*size \(32, 32\)"),
])
def test_bad_base_item_raises(hw2, bad, error, message):
    with pytest.raises(error, match=message):
        hw2.MNISTTwoView(ListDataset([(bad, 0)]))[0]


@pytest.mark.parametrize("label, error, message", [
    (3.7, ValueError, r"^label must be integral"),  # was truncated to 3
    (torch.tensor(3.7), ValueError, r"^label must be integral"),
    (10, ValueError, r"^label must be labels in \(0, 1, .*got \[10\]"),
    (-1, ValueError, r"got \[-1\]"),
    ("5", TypeError, r"^label must be numeric labels, got str"),
    (True, TypeError, r"^label must be numeric labels, got bool"),
    (torch.tensor([3, 4]), ValueError, r"^label must be one integer, got 2 values"),
])
def test_bad_label_raises(hw2, label, error, message):
    image = Image.fromarray(random_digits(1)[0])
    with pytest.raises(error, match=message):
        hw2.MNISTTwoView(ListDataset([(image, label)]))[0]


@pytest.mark.parametrize("label", [3, 3.0, np.int64(3), torch.tensor(3),
                                   torch.tensor([3])])
def test_integral_labels_of_any_type_are_ints(hw2, label):
    image = Image.fromarray(random_digits(1)[0])
    y = hw2.MNISTTwoView(ListDataset([(image, label)]))[0][2]
    assert y == 3 and type(y) is int


@pytest.mark.parametrize("index, message", [
    (slice(0, 2), r"^index must be one int \(for batches use a DataLoader\), got slice"),
    (1.0, r"^index must be one int .*got float"),
    (torch.tensor([0, 1]), r"^index must be one int .*got Tensor"),
])
def test_index_is_one_int(hw2, pil_base, index, message):
    with pytest.raises(TypeError, match=message):
        hw2.MNISTTwoView(pil_base)[index]
    assert hw2.MNISTTwoView(pil_base)[torch.tensor(2)][2] == pil_base[2][1]


def test_base_item_must_be_a_pair(hw2):
    image = Image.fromarray(random_digits(1)[0])
    with pytest.raises(TypeError, match=r"^base_dataset\[index\] must be an "
                       r"\(image, label\) pair, got tuple"):
        hw2.MNISTTwoView(ListDataset([(image, 1, "extra")]))[0]


@pytest.mark.parametrize("kwargs, message", [
    (dict(return_original=1), "return_original must be True or False"),
    (dict(return_original="yes"), "return_original"),
    (dict(base_transform="ToTensor"), "base_transform must be callable"),
    (dict(augment_transform=3), "augment_transform must be callable"),
])
def test_bad_constructor_arguments(hw2, pil_base, kwargs, message):
    with pytest.raises(TypeError, match=message):
        hw2.MNISTTwoView(pil_base, **kwargs)


@pytest.mark.parametrize("base", [5, (x for x in range(3))])
def test_base_dataset_without_len_or_indexing(hw2, base):
    with pytest.raises(TypeError, match="base_dataset must be indexable"):
        hw2.MNISTTwoView(base)


def test_real_mnist(hw2, mnist_train):
    assert len(mnist_train) == 60000
    assert mnist_train[0][1] == 5
    x1, x2, y = hw2.MNISTTwoView(mnist_train)[0]
    assert y == 5 and x1.shape == x2.shape == (1, 28, 28)
    x0 = hw2.MNISTTwoView(mnist_train, return_original=True)[0][0]
    assert torch.equal(x0, transforms.ToTensor()(mnist_train[0][0]))


def test_mnist_files_match_torchvision_md5s(root):
    raw = root / "data" / "MNIST" / "raw"
    for filename, md5 in torchvision.datasets.MNIST.resources:
        path = raw / filename
        assert path.exists(), f"missing {path}"
        assert hashlib.md5(path.read_bytes()).hexdigest() == md5


def test_missing_mnist_says_which_files(hw2, tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        hw2.load_mnist(tmp_path, download=False)
    message = str(error.value)
    assert str(tmp_path / "MNIST" / "raw") in message
    assert all(name in message
               for name, _ in torchvision.datasets.MNIST.resources)


def copy_raw(root, tmp_path, extracted=False):
    """A copy of the real MNIST/raw files (the .gz, optionally also the
    extracted ones) in tmp_path; never touches data/."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for filename, _ in torchvision.datasets.MNIST.resources:
        names = [filename, filename[:-3]] if extracted else [filename]
        for name in names:
            shutil.copyfile(root / "data" / "MNIST" / "raw" / name, raw / name)
    return raw


def test_corrupt_gz_is_named(hw2, root, tmp_path):
    raw = copy_raw(root, tmp_path)
    gz = raw / "train-images-idx3-ubyte.gz"
    data = bytearray(gz.read_bytes())
    data[1000] ^= 0xFF
    gz.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=re.escape(str(gz)) + " must be the "
                       "original file .*fails its MD5"):
        hw2.load_mnist(tmp_path, download=False)


@pytest.mark.parametrize("damage", [lambda b: b[:len(b) // 2],
                                    lambda b: b""],
                         ids=["truncated", "empty"])
def test_damaged_extracted_file_is_extracted_again(hw2, root, tmp_path,
                                                   damage):
    raw = copy_raw(root, tmp_path, extracted=True)
    labels = raw / "train-labels-idx1-ubyte"
    original = labels.read_bytes()
    labels.write_bytes(damage(original))
    assert not hw2.idx_file_ok(labels)
    with pytest.raises((RuntimeError, ValueError)):  # torchvision alone
        torchvision.datasets.MNIST(tmp_path, train=True, download=False)
    # the .gz files are present and pass their MD5, so torchvision only
    # extracts them again: no network access
    dataset = hw2.load_mnist(tmp_path, train=True, download=True)
    assert labels.read_bytes() == original
    assert len(dataset) == 60000 and dataset[0][1] == 5


def test_damaged_extracted_file_without_gz(hw2, tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    labels = raw / "train-labels-idx1-ubyte"
    labels.write_bytes(b"\x00\x00\x08\x01\x00\x00\xea\x60" + bytes(100))
    with pytest.raises(ValueError, match=re.escape(str(labels))
                       + " must be complete, got a damaged file .delete it"):
        hw2.load_mnist(tmp_path, download=False)
    assert labels.exists()  # the user's file is left for the user


def test_grid_is_8_by_3_with_labels_under_the_originals(hw2, pil_base,
                                                       monkeypatch):
    """One row per example: original | x^(1) | x^(2), headed once, the
    label under each original, tiles of 0.7 in or more, on one page."""
    figures = []
    monkeypatch.setattr(hw2, "save_figure", lambda fig, name: figures.append(fig))
    loader = DataLoader(hw2.MNISTTwoView(pil_base, return_original=True),
                        batch_size=8)
    x0, x1, x2, y = next(iter(loader))
    hw2.show_two_view_batch(x0, x1, x2, y)
    (fig,) = figures
    (ax,) = fig.axes
    images = ax.get_images()
    assert len(images) == 24
    lefts = sorted({im.get_extent()[0] for im in images})
    tops = sorted({im.get_extent()[3] for im in images})
    assert len(lefts) == 3 and len(tops) == 8  # 8 rows x 3 columns
    originals = sorted((im for im in images if im.get_extent()[0] == lefts[0]),
                       key=lambda im: im.get_extent()[3])
    labels = sorted((t for t in ax.texts if t.get_text().startswith("label ")),
                    key=lambda t: t.get_position()[1])
    assert [t.get_text() for t in labels] == [f"label {int(v)}" for v in y]
    for image, label, original in zip(originals, labels, x0):
        left, right, bottom, top = image.get_extent()  # y grows downwards
        x, y_label = label.get_position()
        assert left < x < right and bottom < y_label < bottom + 0.5  # under it
        assert torch.equal(torch.from_numpy(image.get_array().data), original[0])
    headers = {t.get_text() for t in ax.texts}
    assert {"original", "$x^{(1)}$", "$x^{(2)}$"} <= headers
    width, height = fig.get_size_inches()
    x_range = ax.get_xlim()[1] - ax.get_xlim()[0]
    tile = width / x_range  # one tile is one data unit
    assert tile >= 0.7 and height <= 9  # within one page
    hw2.plt.close(fig)
