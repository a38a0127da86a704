"""Compile derivations.tex to build/derivations.pdf, unless that PDF is the
one compiled from today's source (judged by content, never by timestamps).

    python3 tools/derivations.py [SOURCE [BUILD_DIR]]

BUILD_DIR/derivations.pdf.key holds the SHA-256 of the inputs (the source
and this tool) and of the PDF compiled from them. latexmk works in
BUILD_DIR/latex/; the PDF is moved into place only once complete. So a PDF
cut short (a killed build), replaced, or older than a source restored with
`cp -p` does not match the key and is compiled again. A LaTeX error is told
in a few lines (tools/latex_log.py); LaTeX's log is BUILD_DIR/derivations.log.
Standard library only.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

from files import write_atomic, write_failure
from latex_log import describe
from project import BUILD, DERIVATIONS, ROOT, sha256

LATEXMK = ["latexmk", "-xelatex", "-interaction=nonstopmode", "-halt-on-error",
           "-quiet", "-g"]  # -g: always compile (this tool decides when)


class LatexFailed(Exception):
    """LaTeX stopped with an error; the message names it."""


def key(inputs_digest, pdf):
    """The key of pdf, compiled from inputs with this digest."""
    return f"{inputs_digest} {sha256(pdf.read_bytes())}\n"


def compile_pdf(source, pdf):
    """LaTeX source into pdf (replaced only by a complete PDF); the log
    beside pdf."""
    work = pdf.parent / "latex"
    work.mkdir(parents=True, exist_ok=True)
    run = subprocess.run(LATEXMK + [f"-outdir={work}", str(source)],
                         capture_output=True, cwd=Path(source).parent)
    log = work / f"{Path(source).stem}.log"
    if log.is_file():
        shutil.copyfile(log, pdf.with_suffix(".log"))
    if run.returncode:
        raise LatexFailed(describe(pdf.with_suffix(".log"), Path(source).name)
                          if log.is_file() else
                          f"latexmk failed: {run.stderr.decode(errors='replace')[-300:]}")
    os.replace(work / pdf.name, pdf)


def build(source, build_dir):
    """Compile source unless its PDF in build_dir is current; what happened."""
    source, build_dir = Path(source), Path(build_dir)
    pdf = build_dir / f"{source.stem}.pdf"
    key_file = build_dir / f"{pdf.name}.key"
    inputs = sha256(source.read_bytes() + Path(__file__).read_bytes())
    if pdf.is_file() and key_file.is_file() and key_file.read_text() == key(inputs, pdf):
        return None
    key_file.unlink(missing_ok=True)
    compile_pdf(source.resolve(), pdf)
    write_atomic(key_file, key(inputs, pdf))  # a source edited meanwhile: compiled again
    return f"compiled {source.name} to {os.path.relpath(pdf, source.parent)}"


def main(argv):
    source = Path(argv[0]) if argv else ROOT / DERIVATIONS
    build_dir = Path(argv[1]) if len(argv) > 1 else source.resolve().parent / BUILD
    try:
        done = build(source, build_dir)
    except LatexFailed as error:
        sys.exit(str(error))
    except KeyboardInterrupt:
        sys.exit(f"{source.name}: LaTeX interrupted")
    except OSError as error:
        sys.exit(f"{source.name}: {write_failure(error.filename or build_dir, error)}")
    if done:
        print(done)


if __name__ == "__main__":
    main(sys.argv[1:])
