"""The hand-in built by `make pdf`: submission/ with the notebook and its PDF,
and derivations.tex compiled to build/."""
import base64
import re
import subprocess

import nbformat
import pytest

import layout
from project import (FIGURES, HAND_IN, NOTEBOOK, PAGE_LIMIT, PDF, SUBMISSION,
                     figure_outputs, pdf_notebook_digest, pdf_pages, pdf_text,
                     sha256)

HEADINGS = ("Use of large language models", "Problem 1", "Problem 2", "Problem 3")
# nbconvert's LaTeX template scales down a figure wider than this part of the text
FIGURE_MAX_FRACTION = 0.9
DIGIT_PIXELS = (28, 28)  # the MNIST digits, embedded unresampled


@pytest.fixture(scope="module")
def submission(root):
    folder = root / SUBMISSION
    for name in HAND_IN:
        assert (folder / name).exists(), f"run `make pdf` first: no {folder / name}"
    return folder


@pytest.fixture(scope="module")
def text(submission):
    return pdf_text(submission / PDF, layout=True)


def test_submission_is_one_build(submission):
    """Exactly the hand-in files, and the PDF was exported from that very
    notebook file (its digest is in the PDF's Keywords)."""
    assert sorted(p.name for p in submission.iterdir()) == sorted(HAND_IN)
    digest = sha256((submission / NOTEBOOK).read_bytes())
    assert pdf_notebook_digest(submission / PDF) == digest


def test_hw2_pdf_headings_and_references(text):
    for heading in HEADINGS:
        assert re.search(rf"^\s*{heading}", text, re.M), heading
    # a numbered heading: a number before it on the same line (a page
    # number ends the line before a heading at the top of a page)
    assert not re.search(rf"^[ \t]*\d+(\.\d+)*[ \t]+({'|'.join(HEADINGS)})", text, re.M)
    assert "??" not in text  # an unresolved reference
    assert not re.search(r"\b(In|Out)\s*\[\s*\d*\s*\]:", text)  # prompts hidden


def test_hw2_pdf_page_limit(submission):
    assert pdf_pages(submission / PDF) <= PAGE_LIMIT


def test_hw2_pdf_plots_are_vector(submission):
    """The only raster images in the PDF are the MNIST digits at their own
    28 x 28 pixels: every plot is vector."""
    listing = subprocess.run(["pdfimages", "-list", str(submission / PDF)],
                             check=True, capture_output=True, text=True).stdout
    sizes = [tuple(map(int, line.split()[3:5])) for line in listing.splitlines()[2:]]
    assert sizes and set(sizes) == {DIGIT_PIXELS}


def media_width_points(pdf_bytes):
    box = re.search(rb"/MediaBox\s*\[\s*([-\d.\s]+)\]", pdf_bytes)
    x0, _, x1, _ = map(float, box.group(1).split())
    return x1 - x0


def test_figures_print_unscaled(hw2, root):
    """nbconvert scales a figure down only if it is wider than 0.9 of the
    text width (the notebook's TEXT_WIDTH); no figure is, so the figures'
    font sizes are the printed sizes. figures/ holds one PDF per figure."""
    nb = nbformat.read(root / NOTEBOOK, as_version=4)
    pdfs = [base64.b64decode(data) for data in figure_outputs(nb)]
    assert pdfs
    limit = FIGURE_MAX_FRACTION * hw2.TEXT_WIDTH * 72
    assert all(media_width_points(pdf) <= limit for pdf in pdfs)
    assert len(list((root / FIGURES).glob("*.pdf"))) == len(pdfs)


def page_texts(pdf):
    return pdf_text(pdf, layout=True).split("\f")


def test_problem3_table_and_comment_share_a_page(submission):
    """No page break between the Comment and the table it quotes."""
    (page,) = [p for p in page_texts(submission / PDF) if "Comment." in p]
    for cited in ("train loss", "test loss", "steps to", "s per iter",
                  "Steps to loss", "Best vs final"):
        assert cited in page, cited


def test_grid_is_on_one_page(hw2, submission):
    (page,) = [p for p in page_texts(submission / PDF) if "Figure 1. MNISTTwoView" in p]
    labels = re.findall(r"^\s*label \d\s*$", page, re.M)
    assert len(labels) == hw2.BATCH_SIZE


def test_every_page_but_the_last_is_two_thirds_full(submission):
    fill = [round(f, 2) for f in layout.page_fill(submission / PDF)[:-1]]
    assert all(f >= 2 / 3 for f in fill), " ".join(map(str, fill))


def test_derivations_pdf(root):
    pdf = root / "build" / "derivations.pdf"
    assert pdf.exists(), "run `make pdf` first: no build/derivations.pdf"
    text = pdf_text(pdf)
    assert "Problem 1" in text and "Problem 3" in text
    assert "large language model" in text and "??" not in text
    log = (root / "build" / "derivations.log").read_text(errors="replace")
    assert not re.search(r"undefined|Warning|Overfull", log)
