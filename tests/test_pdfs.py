"""The hand-in built by `make pdf`: submission/ with two PDFs and the notebook."""
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


def test_hw2_pdf_embeds_every_figure(root, submission):
    nb = nbformat.read(root / "hw2.ipynb", as_version=4)
    figures = sum("image/png" in o.get("data", {}) for c in nb.cells
                  if c.cell_type == "code" for o in c.outputs)
    listing = subprocess.run(["pdfimages", "-list", str(submission / "hw2.pdf")],
                             check=True, capture_output=True, text=True).stdout
    images = len(listing.splitlines()) - 2  # two header lines
    assert figures == len(list((root / "figures").glob("*.png"))) == 4
    assert images >= figures


def test_derivations_pdf(root, submission):
    text = pdf_text(submission / "derivations.pdf")
    assert "Problem 1" in text and "Problem 3" in text
    assert "large language model" in text and "??" not in text
    log = (root / "build" / "derivations.log").read_text(errors="replace")
    assert not re.search(r"undefined|Warning|Overfull", log)
