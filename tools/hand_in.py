"""Export the executed notebook to PDF and put both into submission/ as one unit.

    .venv/bin/python tools/hand_in.py NOTEBOOK --stamp build/STEM.executed INPUT ...
    python3 tools/hand_in.py NOTEBOOK --status    what submission/ holds (after a failure)

The notebook file is read once: those bytes are what is exported (the PDF's
Keywords record their SHA-256) and what submission/ gets. They must be the
executed notebook, i.e. match the run's stamp (tools/run_notebook.py). The
PDF is exported into build/ and kept there for as long as the notebook's
bytes, the template and the export settings stay the same (decided by
content, never by timestamps). submission/ is then replaced as a whole
(rename of a complete folder): a failed or interrupted build leaves the
previous hand-in, and says so.
"""
import argparse
import contextlib
import difflib
import logging
import os
import re
import shutil
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import layout
from files import signals_held, write_atomic, write_failure
from latex_log import errors, finished
from project import (BUILD_STARTED, DIGEST_PREFIX, HAND_IN, KEYWORDS_RESOURCE, PDF, STEM,
                     SUBMISSION, TEMPLATE, NotANotebook, pdf_notebook_digest, read_notebook,
                     run_digest, sha256, text_mismatches)


class Failed(Exception):
    """The hand-in was not built; submission/ is as it was."""


def export_key(data):
    """What the PDF in build/ depends on: notebook bytes, template, settings."""
    from jupyter_config import SETTINGS
    return sha256(data + TEMPLATE.read_bytes() + repr(SETTINGS).encode())


def valid_pdf(path, digest):
    """path is a complete PDF exported from the notebook with this digest."""
    return (path.is_file() and path.read_bytes().rstrip().endswith(b"%%EOF")
            and pdf_notebook_digest(path) == digest)


def export(data, folder, log):
    """The PDF of the notebook bytes `data`, as `jupyter nbconvert --to pdf`
    exports it with the same settings."""
    import nbformat
    from nbconvert import LatexExporter, PDFExporter
    from nbconvert.exporters.pdf import LatexFailed
    from nbconvert.nbconvertapp import NbConvertApp
    app = NbConvertApp()
    app.load_config_file()  # .venv/etc/jupyter/jupyter_nbconvert_config.json
    nb = nbformat.reads(data.decode("utf-8"), as_version=4)
    resources = {"metadata": {"name": STEM, "path": str(folder)},
                 KEYWORDS_RESOURCE: DIGEST_PREFIX + sha256(data)}
    quiet = logging.getLogger("hw2.nbconvert")  # it logs all of LaTeX's output
    quiet.disabled = True
    try:
        body, _ = PDFExporter(config=app.config, log=quiet).from_notebook_node(
            nb, dict(resources))
    except nbformat.ValidationError as error:  # what parse_notebook lets through
        raise Failed(f"not a valid notebook ({error.message}); save it from "
                     "Jupyter, then run make pdf again") from None
    except LatexFailed as failed:
        log.write_text(failed.output)
        tex, _ = LatexExporter(config=app.config).from_notebook_node(nb, dict(resources))
        raise Failed(latex_failure(nb, tex, failed.output, log)) from None
    return body


def latex_failure(nb, tex, log_text, log):
    """Which cell broke LaTeX, and how, in a few lines; or that LaTeX was
    stopped (killed) before it could finish, which is no LaTeX error."""
    found = errors(log_text)
    if not finished(log_text):
        return ("the PDF export stopped: xelatex ended before finishing its run, "
                f"with no LaTeX error (was it killed?); run make pdf again (its output: {log})")
    if not found:
        return f"the PDF export failed in LaTeX; see {log}"
    message, line, context = found[0]
    tex_lines = tex.splitlines()
    if line and line <= len(tex_lines):
        text = tex_lines[line - 1]
    else:  # no line number (a runaway argument): a line holding its text
        held = [t for t in tex_lines if context and context in t]
        macro = re.search(r"use of (\\\w+)", message)  # the command it belongs to
        text = next((t for t in held if macro and macro.group(1) in t),
                    held[0] if held else context)
    index, cell = source_cell(nb, text or context)
    where = (f"cell {index} ({cell.cell_type}: {first_line(cell)})"
             if cell is not None else f"LaTeX line {line}")
    return (f"the PDF export failed in LaTeX, in {where}:\n"
            f"  ! {message}  {context}\n  full log: {log}")


def source_cell(nb, text):
    """(index, cell) of the cell whose source shares most with text."""
    def overlap(cell):
        match = difflib.SequenceMatcher(None, text, cell.source, autojunk=False)
        return match.find_longest_match(0, len(text), 0, len(cell.source)).size
    scores = [(overlap(c), i) for i, c in enumerate(nb.cells)]
    size, index = max(scores, default=(0, None))
    return (index, nb.cells[index]) if size >= 4 else (None, None)


def first_line(cell):
    return next((s.strip() for s in cell.source.splitlines() if s.strip()), "")[:60]


def is_current(submission, data, pdf):
    """submission/ holds exactly this notebook and this PDF."""
    return (submission.is_dir()
            and sorted(p.name for p in submission.iterdir()) == sorted(HAND_IN)
            and (submission / HAND_IN[0]).read_bytes() == data
            and (submission / PDF).read_bytes() == pdf.read_bytes())


def replace_folder(folder, files):
    """Make folder hold exactly files ({name: source path or bytes}): built
    complete beside it, then swapped in by two renames."""
    new, old = (folder.with_name(f".{folder.name}.{x}") for x in ("new", "old"))
    for stale in (new, old):
        shutil.rmtree(stale, ignore_errors=True)
    new.mkdir()
    try:
        for name, content in files.items():
            if isinstance(content, bytes):
                (new / name).write_bytes(content)
            else:
                shutil.copyfile(content, new / name)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    with signals_held():  # a stop between the renames would leave no folder
        if folder.exists():
            os.rename(folder, old)
        os.rename(new, folder)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def writing(path):
    """An OSError in the block (say a full disk) fails the build in one line."""
    try:
        yield
    except OSError as error:
        raise Failed(write_failure(path, error)) from None


def build(notebook, stamp, inputs):
    data, nb = read_notebook(notebook)
    if stamp and (not stamp.is_file() or stamp.read_text().strip() != run_digest(nb, inputs)):
        raise Failed(f"{notebook} changed after it ran (its code or outputs are not "
                     "those of the run): run the build again")
    stale = text_mismatches(nb)
    if stale:
        raise Failed(f"the text of {notebook} does not match its run (submission/ "
                     "unchanged); type the run's values:\n  " + "\n  ".join(stale))
    build_dir = stamp.parent if stamp else Path(notebook).resolve().parent / "build"
    build_dir.mkdir(parents=True, exist_ok=True)
    pdf, key = build_dir / PDF, build_dir / f"{PDF}.key"
    if not (valid_pdf(pdf, sha256(data)) and key.is_file()
            and key.read_text() == export_key(data)):
        with writing(f"the PDF in {tempfile.gettempdir()}"):  # where LaTeX runs
            body = export(data, Path(notebook).resolve().parent, build_dir / f"{STEM}.log")
        with writing(pdf):
            write_atomic(pdf, body)
            write_atomic(key, export_key(data))
    broken = layout.problems(nb, pdf)
    if broken:
        raise Failed("the hand-in breaks the layout rules (submission/ "
                     "unchanged):\n  " + "\n  ".join(broken[:5]))
    submission = Path(notebook).resolve().parent / SUBMISSION
    pages = layout.pages(pdf)  # every build says how much room is left
    if is_current(submission, data, pdf):
        return f"{pages}\n{SUBMISSION}/ is up to date: {' '.join(HAND_IN)}"
    with writing(f"{SUBMISSION}/"):
        replace_folder(submission, {HAND_IN[0]: data, PDF: pdf})
    return (f"{pages}\n{SUBMISSION}/: {' '.join(HAND_IN)} "
            f"(notebook sha256 {sha256(data)[:12]})")


def status(notebook, started=None):
    """After a failed or stopped build: what submission/ holds. started:
    when the build began (seconds since the epoch), if known: a hand-in
    made since then is this build's, not the previous one."""
    sub = Path(notebook).resolve().parent / SUBMISSION
    kept = sub / HAND_IN[0]
    if not kept.is_file():
        return f"{SUBMISSION}/ is empty: there is no complete hand-in yet."
    made = kept.stat().st_mtime
    when = datetime.fromtimestamp(made).strftime("%Y-%m-%d %H:%M")
    same = Path(notebook).is_file() and Path(notebook).read_bytes() == kept.read_bytes()
    which = ("holds the hand-in this build made" if started and made >= started
             else "still holds the previous build")
    return (f"{SUBMISSION}/ {which} (of {when})"
            + ("." if same else f", not the current {Path(notebook).name}."))


def main(argv):
    parser = argparse.ArgumentParser(prog="tools/hand_in.py")
    parser.add_argument("notebook")
    parser.add_argument("--status", action="store_true")
    parser.add_argument("--stamp", type=Path)
    parser.add_argument("inputs", nargs="*")
    args = parser.parse_intermixed_args(argv)
    if args.status:
        started = os.environ.get(BUILD_STARTED)
        print(status(args.notebook, started and float(started)), file=sys.stderr)
        return
    try:
        print(build(args.notebook, args.stamp, args.inputs))
    except NotANotebook as error:
        sys.exit(str(error))
    except Failed as error:
        sys.exit(f"{args.notebook}: {error}")
    except KeyboardInterrupt:
        sys.exit(f"{args.notebook}: PDF export interrupted")


if __name__ == "__main__":
    main(sys.argv[1:])
