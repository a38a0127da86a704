"""The hand-in built by `make pdf`: submission/ with two PDFs and the notebook."""
import base64
import re
import subprocess

import nbformat
import pytest


@pytest.fixture(scope="module")
def submission(root):
    folder = root / "submission"
    for name in ("hw2.ipynb", "hw2.pdf", "derivations.pdf"):
        assert (folder / name).exists(), f"run `make pdf` first: no {name}"
    return folder


def pdf_text(path):
    return subprocess.run(["pdftotext", "-layout", str(path), "-"],
                          check=True, capture_output=True, text=True).stdout


def test_submitted_notebook_is_the_executed_one(root, submission):
    assert (submission / "hw2.ipynb").read_bytes() == \
        (root / "hw2.ipynb").read_bytes()


def test_hw2_pdf_text(submission):
    text = pdf_text(submission / "hw2.pdf")
    for heading in ["ECE 685D HW2", "Zanwen Fu (zf93)",
                    "Use of large language models",
                    "Problem 1: backpropagation through a residual MLP",
                    "Problem 2: a two-view MNIST dataset",
                    "Problem 3: logistic regression"]:
        assert heading in text, heading
    assert "A large language model" in text
    assert "??" not in text
    assert "gradcheck" in text and "passed" in text


def test_hw2_pdf_plots_are_vector(submission):
    """The only raster images in hw2.pdf are the 24 MNIST digits of the
    grid (28 x 28 pixels, resampled to under 64); every plot is vector."""
    listing = subprocess.run(["pdfimages", "-list", str(submission / "hw2.pdf")],
                             check=True, capture_output=True, text=True).stdout
    sizes = [tuple(map(int, line.split()[3:5]))
             for line in listing.splitlines()[2:]]
    assert len(sizes) == 24
    assert all(w <= 64 and h <= 64 for w, h in sizes)


def media_width_points(pdf_bytes):
    box = re.search(rb"/MediaBox\s*\[\s*([-\d.\s]+)\]", pdf_bytes)
    x0, _, x1, _ = map(float, box.group(1).split())
    return x1 - x0


def test_figures_print_unscaled_with_8pt_text(hw2, root):
    """nbconvert scales a figure down only if it is wider than 0.9 of the
    text width (0.9 x 7 in = 453.6 pt); no figure is, so the figures' font
    sizes (8 pt at least) are the printed sizes."""
    nb = nbformat.read(root / "hw2.ipynb", as_version=4)
    pdfs = [base64.b64decode(o["data"]["application/pdf"])
            for c in nb.cells if c.cell_type == "code" for o in c.outputs
            if "application/pdf" in o.get("data", {})]
    assert len(pdfs) == 4
    assert all(media_width_points(pdf) <= 0.9 * 7 * 72 for pdf in pdfs)
    sizes = [hw2.plt.rcParams[key] for key in (
        "font.size", "axes.titlesize", "axes.labelsize", "legend.fontsize",
        "xtick.labelsize", "ytick.labelsize")]
    assert min(sizes) >= 8
    assert sorted(p.name for p in (root / "figures").iterdir()) == [
        "p2_two_view_batch.pdf", "p3_run1_assignment.pdf",
        "p3_run2_separable.pdf", "p3_run3_ridge.pdf"]


def test_hw2_pdf_length_and_headings(submission):
    info = subprocess.run(["pdfinfo", str(submission / "hw2.pdf")],
                          check=True, capture_output=True, text=True).stdout
    pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))
    assert pages <= 16
    text = pdf_text(submission / "hw2.pdf")
    assert not re.search(r"^\s*\d+(\.\d+)+\s+Problem", text, re.M)
    # commentary and hide-input cells show their output, not their source
    assert "h1 = {label: run" not in text and "def plot_runs" not in text
    assert "Gradient descent on the sum loss overshoots" in text


def test_derivations_pdf(root, submission):
    text = pdf_text(submission / "derivations.pdf")
    assert "Problem 1" in text and "Problem 3" in text
    assert "large language model" in text and "??" not in text
    log = (root / "build" / "derivations.log").read_text(errors="replace")
    assert not re.search(r"undefined|Warning|Overfull", log)
