"""The hand-in's layout rules: `make pdf` refuses a hand-in that breaks one
(before submission/ changes), and the tests check the stored notebook.

    problems(nb, pdf=None) -> one line per broken rule, [] if none
"""
from project import (HIDE_INPUT_TAG, MAX_CODE_LINE, MAX_OUTPUT_LINE,
                     PAGE_LIMIT, cell_tags, pdf_pages)


def output_texts(cell):
    """Every text an output of cell prints in the PDF: streams, and
    text/plain where no typeset (text/latex) form replaces it."""
    for output in cell.get("outputs", []):
        yield "".join(output.get("text", ""))
        data = output.get("data", {})
        if "text/latex" not in data:
            yield "".join(data.get("text/plain", ""))


def cell_problems(index, cell):
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
    for text in output_texts(cell):
        if not text.isascii():
            yield f"{where}: non-ASCII output (missing glyphs vanish from the PDF)"
        for line in text.splitlines():
            if len(line) > MAX_OUTPUT_LINE:
                yield (f"{where}: a printed line of {len(line)} characters "
                       f"(at most {MAX_OUTPUT_LINE} fit the page): {line[:40]}")
    hidden = cell.get("metadata", {}).get("jupyter", {}).get("source_hidden")
    if HIDE_INPUT_TAG in cell_tags(cell) and not hidden:
        yield (f"{where}: tagged {HIDE_INPUT_TAG} but expanded in Jupyter "
               "(set metadata.jupyter.source_hidden)")


def problems(nb, pdf=None):
    """The layout rules that notebook nb (a dict) and its PDF break."""
    found = [p for i, cell in enumerate(nb["cells"]) for p in cell_problems(i, cell)]
    if pdf is not None and (pages := pdf_pages(pdf)) > PAGE_LIMIT:
        found.append(f"{pdf.name}: {pages} pages, at most {PAGE_LIMIT}")
    return found
