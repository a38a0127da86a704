"""The hand-in built by `make pdf`: submission/ with the notebook and its PDF,
and derivations.tex compiled to build/."""
import base64
import re
import subprocess

import nbformat
import pytest

from project import (FIGURES, HAND_IN, NOTEBOOK, PAGE_LIMIT, PDF, SUBMISSION,
                     TEMPLATE, figure_outputs, pdf_notebook_digest, pdf_pages,
                     pdf_text, sha256)

HEADINGS = ("Use of large language models", "Problem 1", "Problem 2", "Problem 3")
POINTS = {"in": 72.0, "cm": 72 / 2.54, "mm": 72 / 25.4, "pt": 72 / 72.27, "bp": 1.0}
PAPER_WIDTH = {"letterpaper": 8.5 * 72, "a4paper": 210 * 72 / 25.4}
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
    assert not re.search(rf"^\s*\d+(\.\d+)*\s+({'|'.join(HEADINGS)})", text, re.M)
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


def length_points(value):
    number, unit = re.fullmatch(r"([\d.]+)\s*([a-z]{2})", value.strip()).groups()
    return float(number) * POINTS[unit]


def template_text_width(template):
    """The text width in points that the template's paper size and
    \\geometry{...lmargin=...,rmargin=...} give."""
    paper = next(w for name, w in PAPER_WIDTH.items() if name in template)
    options = dict(option.split("=", 1) for option in re.search(
        r"\\geometry\{([^}]*)\}", template).group(1).split(",") if "=" in option)
    return paper - length_points(options["lmargin"]) - length_points(options["rmargin"])


@pytest.mark.parametrize("template, inches", [
    (r"\documentclass[10pt,letterpaper]{article} \geometry{verbose,tmargin=1in,"
     r"lmargin=1in,rmargin=1.5in}", 6.0),
    (r"\documentclass[a4paper]{article} \geometry{lmargin=20mm,rmargin=2cm}",
     170 / 25.4)])
def test_text_width_of_a_template(template, inches):
    assert template_text_width(template) == pytest.approx(inches * 72)


def media_width_points(pdf_bytes):
    box = re.search(rb"/MediaBox\s*\[\s*([-\d.\s]+)\]", pdf_bytes)
    x0, _, x1, _ = map(float, box.group(1).split())
    return x1 - x0


def test_figures_print_unscaled_with_8pt_text(hw2, root):
    """nbconvert scales a figure down only if it is wider than 0.9 of the
    text width; no figure is, so the figures' font sizes (8 pt at least)
    are the printed sizes. figures/ holds one PDF per figure shown."""
    nb = nbformat.read(root / NOTEBOOK, as_version=4)
    pdfs = [base64.b64decode(data) for data in figure_outputs(nb)]
    assert pdfs
    limit = FIGURE_MAX_FRACTION * template_text_width(TEMPLATE.read_text())
    assert all(media_width_points(pdf) <= limit for pdf in pdfs)
    sizes = [hw2.plt.rcParams[key] for key in (
        "font.size", "axes.titlesize", "axes.labelsize", "legend.fontsize",
        "xtick.labelsize", "ytick.labelsize")]
    assert min(sizes) >= 8
    assert len(list((root / FIGURES).glob("*.pdf"))) == len(pdfs)


def test_derivations_pdf(root):
    pdf = root / "build" / "derivations.pdf"
    assert pdf.exists(), "run `make pdf` first: no build/derivations.pdf"
    text = pdf_text(pdf)
    assert "Problem 1" in text and "Problem 3" in text
    assert "large language model" in text and "??" not in text
    log = (root / "build" / "derivations.log").read_text(errors="replace")
    assert not re.search(r"undefined|Warning|Overfull", log)
