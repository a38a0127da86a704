"""The project's facts, named once, for tools/, tests/ and the Makefile.

Standard library only (the build imports it before any run is needed).

    python3 tools/project.py NAME     prints one fact (the Makefile reads NOTEBOOK)
"""
import hashlib
import json
import re
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "hw2.ipynb"
STEM = Path(NOTEBOOK).stem
PDF = f"{STEM}.pdf"
TEMPLATE = ROOT / "tools" / "hw2_pdf.tex.j2"
# The notebook names its text width in inches as `TEXT_WIDTH = <number>` in a
# code cell; the template sets the PDF's text width from there
TEXT_WIDTH_NAME = "TEXT_WIDTH"
FIGURES = "figures"  # the notebook writes FIGURES/*.pdf
SUBMISSION = "submission"
BUILD = "build"  # build products, beside the notebook
# tools/lock.py tells a failed build's report when the build took the lock,
# in this environment variable (seconds since the epoch)
BUILD_STARTED = "BUILD_STARTED"
DERIVATIONS = "derivations.tex"  # compiled to BUILD/derivations.pdf
HAND_IN = (NOTEBOOK, PDF)  # exactly what submission/ holds
PAGE_LIMIT = 8  # pages of the hand-in PDF
MAX_CODE_LINE = 79  # characters: longer code lines wrap in the PDF
MAX_OUTPUT_LINE = 76  # printed output sits indented: it wraps sooner

# Setup registers each project folder's .venv as a Jupyter kernel of the user
# (tools/kernel.py): KERNEL_NAME-<8 hex digits of the folder's path>, shown
# as KERNEL_DISPLAY_NAME with the folder filled in
KERNEL_NAME = "ece685d-hw2"
KERNEL_DISPLAY_NAME = "Python (ECE 685D HW2, {folder})"

# Cell tags: `export` cells hold the definitions the tests load, the PDF
# shows only the output of `hide-input` cells and nothing of `remove-cell` ones.
EXPORT_TAG = "export"
HIDE_INPUT_TAG = "hide-input"
REMOVE_CELL_TAG = "remove-cell"

# The PDF records the SHA-256 of the notebook file it was exported from in
# its Keywords, as DIGEST_PREFIX + hex digest (the template prints
# resources[KEYWORDS_RESOURCE]).
KEYWORDS_RESOURCE = "pdf_keywords"
DIGEST_PREFIX = "notebook-sha256="

CONFLICT = re.compile(r"^(<{7}|={7}|>{7})( |$)", re.M)


class NotANotebook(Exception):
    """The file is not a valid version-4 notebook; it was not touched."""


class NoLoopback(Exception):
    """Jupyter cannot talk to a kernel on this machine."""


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def parse_notebook(text, path=NOTEBOOK):
    """The notebook in text as a dict, or NotANotebook saying why (with the
    line of a JSON error, and whether it looks like a merge conflict)."""
    def refuse(why):
        hint = ("; it looks like an unresolved git merge conflict (<<<<<<< "
                "markers): resolve it, e.g. `git checkout --ours " f"{path}`"
                if CONFLICT.search(text) else "")
        return NotANotebook(f"{path} is not a valid notebook: {why}{hint}. "
                            "The file was not touched.")
    try:
        nb = json.loads(text)
    except json.JSONDecodeError as error:
        raise refuse(f"{error.msg}: line {error.lineno} column {error.colno}") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise refuse("no list of cells")
    if nb.get("nbformat") != 4:
        raise refuse(f"nbformat is {nb.get('nbformat')!r}, not 4")
    if not isinstance(nb.get("nbformat_minor"), int):
        raise refuse('"nbformat_minor" is missing or not a number (Jupyter writes '
                     '"nbformat_minor": 5 after "nbformat": 4)')
    if not isinstance(nb.get("metadata"), dict):
        raise refuse('"metadata" is missing or not an object')
    if not any(cell.get("cell_type") == "code" for cell in nb["cells"]):
        raise refuse("it has no code cells")
    return nb


def read_notebook(path):
    """(bytes, dict) of the notebook file at path; NotANotebook if invalid."""
    data = Path(path).read_bytes()
    return data, parse_notebook(data.decode("utf-8", "replace"), Path(path).name)


def check_loopback(path):
    """Jupyter talks to its kernel over 127.0.0.1: fail at once without it."""
    try:
        with socket.socket() as server:
            server.bind(("127.0.0.1", 0))
            server.listen()
            socket.create_connection(server.getsockname(), timeout=5).close()
    except OSError as error:
        raise NoLoopback(f"{path}: the kernel cannot be reached: no loopback network "
                         f"(127.0.0.1: {error.strerror or error}); bring up `lo`, "
                         "then run the build again. The file is unchanged.") from None


def run_digest(nb, inputs):
    """What a run of the notebook depends on, as one SHA-256: its code cells
    (a parsed file) with their outputs, its kernel, the input files (a
    folder: every file in it) and the Python version. The run's stamp
    (tools/run_notebook.py) holds it; the hand-in checks it."""
    code = [[c["source"], c.get("outputs"), c.get("execution_count")]
            for c in nb["cells"] if c["cell_type"] == "code"]
    code.append(markdown_comments(nb))  # what the run checks the text by
    kernel = nb["metadata"].get("kernelspec")
    sha = hashlib.sha256(json.dumps([sys.version, kernel, code]).encode())
    for file in input_files(inputs):
        sha.update(f"\0{file}\0".encode())
        sha.update(file.read_bytes() if file.is_file() else b"missing")
    return sha.hexdigest()


def markdown_source(cell):
    source = cell["source"]
    return "".join(source) if isinstance(source, list) else source


def markdown_comments(nb):
    """The HTML comments of the markdown cells: there the text names the
    values the run checks it against (the notebook's check_text)."""
    return [re.findall(r"(?s)<!--.*?-->", markdown_source(c))
            for c in nb["cells"] if c["cell_type"] == "markdown"]


def text_mismatches(nb):
    """One line per tie of the markdown that the values stored by the
    notebook's last run (check_text's output) do not support: a number
    typed differently from the run's value, a statement the run found
    false, or a tie the run did not evaluate. [] if the text holds."""
    stored = next((o["metadata"]["text_ties"] for c in code_cells(nb)
                   for o in c.get("outputs", [])
                   if "text_ties" in o.get("metadata", {})), None)
    if stored is None:
        tied = any(re.search(r"<!--(\{|check:)", markdown_source(c))
                   for c in nb["cells"] if c["cell_type"] == "markdown")
        return ["the run did not check the text (its last cell, "
                "check_text(), printed no result)"] if tied else []
    tie, values, found = re.compile(stored["pattern"]), stored["values"], []
    for index, cell in enumerate(nb["cells"]):
        source = markdown_source(cell) if cell["cell_type"] == "markdown" else ""
        for match in tie.finditer(source):
            before = " ".join(tie.sub("", source[:match.start()]).split())
            value, where = values.get(match[0]), f"cell {index}: '...{before[-50:]}'"
            if value is None:
                found.append(f"{where}: {match[0]} was not evaluated by the run")
            elif isinstance(value, str) and not before.endswith(value):
                typed = re.search(r"[\w.+-]*$", before)[0]
                found.append(f"{where} has {typed}, the run gives {value}")
            elif value is False:
                found.append(f"{where} is no longer true ({match['check'].strip()})")
    return found


def input_files(paths):
    """The given paths, each folder replaced by the files in it."""
    for path in map(Path, paths):
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file())
        else:
            yield path


def ran_top_to_bottom(nb):
    """The stored notebook holds one complete run: its code cells counted
    1, 2, 3, ... (not cleared, nor run out of order)."""
    counts = [c.get("execution_count") for c in code_cells(nb)]
    return counts == list(range(1, len(counts) + 1))


def cell_tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def code_cells(nb, tag=None):
    return [c for c in nb["cells"] if c["cell_type"] == "code"
            and (tag is None or tag in cell_tags(c))]


def figure_outputs(nb):
    """The PDF (vector) version of every figure the notebook shows."""
    return [o["data"]["application/pdf"] for c in code_cells(nb)
            for o in c.get("outputs", []) if "application/pdf" in o.get("data", {})]


def mask_numbers(text):
    """Every number becomes '#' and white space one space: what differs
    between two runs (timings, round-off) is masked."""
    text = re.sub(r"[-+]?\d+(\.\d+)?([eE][-+]?\d+)?", "#", text)
    return " ".join(text.split())


def pdf_text(path, layout=False):
    return subprocess.run(["pdftotext", *(["-layout"] if layout else []),
                           str(path), "-"], check=True, capture_output=True,
                          text=True).stdout


def pdf_info(path):
    """pdfinfo's fields of the PDF at path, as a dict; {} if unreadable."""
    run = subprocess.run(["pdfinfo", str(path)], capture_output=True,
                         text=True, errors="replace")
    if run.returncode:
        return {}
    fields = (line.split(":", 1) for line in run.stdout.splitlines() if ":" in line)
    return {key: value.strip() for key, value in fields}


def pdf_pages(path):
    return int(pdf_info(path)["Pages"])


def pdf_notebook_digest(path):
    """The notebook digest recorded in the PDF at path, or None (also for a
    truncated or unreadable PDF)."""
    keywords = pdf_info(path).get("Keywords", "")
    return keywords[len(DIGEST_PREFIX):] if keywords.startswith(DIGEST_PREFIX) else None


if __name__ == "__main__":
    print(globals()[sys.argv[1]])
