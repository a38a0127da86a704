"""The hand-in's layout rules: `make pdf` refuses a hand-in that breaks one
(before submission/ changes), and the tests check the stored notebook.

    problems(nb, pdf=None) -> one line per broken rule, [] if none
    source_rules_broken(nb) -> those of the sources alone: `make pdf` checks
                               them before it runs the notebook
    pages(pdf) -> "hw2.pdf: 8 of 8 pages; ..." how full each page is, which
                  every build prints
"""
import re
import subprocess

from project import (HIDE_INPUT_TAG, MAX_CODE_LINE, MAX_OUTPUT_LINE,
                     PAGE_LIMIT, TEMPLATE, cell_tags, pdf_pages)

FILL_DPI = 72  # pages rendered at one pixel per point to measure how full they are


def output_texts(cell):
    """Every text an output of cell prints in the PDF: streams, and
    text/plain where no typeset (text/latex) form replaces it."""
    for output in cell.get("outputs", []):
        yield "".join(output.get("text", ""))
        data = output.get("data", {})
        if "text/latex" not in data:
            yield "".join(data.get("text/plain", ""))


def cell_problems(index, cell):
    yield from source_problems(index, cell)
    where = f"cell {index} ({cell['cell_type']})"
    for text in output_texts(cell):
        if not text.isascii():
            yield f"{where}: non-ASCII output (missing glyphs vanish from the PDF)"
        for line in text.splitlines():
            if len(line) > MAX_OUTPUT_LINE:
                yield (f"{where}: a printed line of {len(line)} characters "
                       f"(at most {MAX_OUTPUT_LINE} fit the page): {line[:40]}")


def source_problems(index, cell):
    """The rules a cell's source breaks: known before the notebook runs."""
    where = f"cell {index} ({cell['cell_type']})"
    source = "".join(cell["source"])
    if not source.isascii():
        yield f"{where}: non-ASCII text (missing glyphs vanish from the PDF)"
    if cell["cell_type"] != "code":
        return
    for line in source.splitlines():
        if len(line) > MAX_CODE_LINE:
            yield (f"{where}: a code line of {len(line)} characters (at most "
                   f"{MAX_CODE_LINE} fit the page): {line.strip()[:40]}")
    hidden = cell.get("metadata", {}).get("jupyter", {}).get("source_hidden")
    if HIDE_INPUT_TAG in cell_tags(cell) and not hidden:
        yield (f"{where}: tagged {HIDE_INPUT_TAG} but expanded in Jupyter "
               "(set metadata.jupyter.source_hidden)")


def source_rules_broken(nb):
    """The rules that the cells' sources break (checked before a run)."""
    return [p for i, cell in enumerate(nb["cells"]) for p in source_problems(i, cell)]


def problems(nb, pdf=None):
    """The layout rules that notebook nb (a dict) and its PDF break."""
    found = [p for i, cell in enumerate(nb["cells"]) for p in cell_problems(i, cell)]
    if pdf is not None and (pages := pdf_pages(pdf)) > PAGE_LIMIT:
        found.append(f"{pdf.name}: {pages} pages, at most {PAGE_LIMIT}")
    return found


def margins():
    """The top and bottom margins of the PDF's pages, in inches (the
    template's geometry)."""
    found = re.search(r"tmargin=([\d.]+)in,bmargin=([\d.]+)in", TEMPLATE.read_text())
    return float(found[1]), float(found[2])


def page_fill(pdf):
    """How far down the text area each page of pdf is used, from 0 to 1:
    the lowest mark (text, figure, rule) between the margins, the page
    number below them left out."""
    image = subprocess.run(["pdftoppm", "-r", str(FILL_DPI), "-gray", str(pdf)],
                           check=True, capture_output=True).stdout
    top, bottom = (round(inches * FILL_DPI) for inches in margins())
    fills = []
    while image:  # one binary PGM per page: P5 width height 255, then pixels
        fields = image.split(maxsplit=4)
        width, height = int(fields[1]), int(fields[2])
        start = len(image) - len(fields[4])
        pixels, image = image[start:start + width * height], image[start + width * height:]
        body = [pixels[row * width:(row + 1) * width]
                for row in range(top, height - bottom)]
        used = [row for row, line in enumerate(body) if min(line) < 128]
        fills.append((used[-1] + 1) / len(body) if used else 0.0)
    return fills


def pages(pdf):
    """One line: the pages of pdf against the limit, and how full each is
    (where the room is)."""
    fills = page_fill(pdf)
    return (f"{pdf.name}: {len(fills)} of {PAGE_LIMIT} pages; each filled to "
            f"(%): {' '.join(str(round(100 * f)) for f in fills)}")
