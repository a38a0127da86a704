"""End to end: JupyterLab's menu export gives the PDF of `make pdf`.

    .venv/bin/python tools/e2e_export.py [NOTEBOOK [REFERENCE_PDF]]

Defaults: the project's notebook (tools/project.py) and its PDF in build/.
The notebook is copied into a temp dir (data/ linked, an empty figures/);
JupyterLab from this Python serves that dir on 127.0.0.1, and chromium
(Debian's, driven by playwright) opens the notebook, waits for an idle kernel,
clicks Run > Run All Cells, waits until every cell has run, then File > Save
and Export Notebook As > PDF. Checks: no error outputs; the downloaded PDF
equals, page for page and word for word, what `jupyter nbconvert --to pdf`
makes of the notebook JupyterLab saved; it has the reference's pages, and on
each page the same words outside the figures with numbers masked (a new run
changes measured timings, and with them the ticks of a timing axis); the
source of cells tagged `hide-input` is absent from the PDF, their output
present. Bounded by --timeout seconds; the server and the browser are always
stopped.

The server takes a fresh random token for each run (`secrets`), through
its environment: never on a command line (which every user of the machine
can read), in a URL, in this script's output or in the server's log.
"""
import argparse
import base64
import contextlib
import difflib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import nbformat
from playwright.sync_api import sync_playwright

from project import (HIDE_INPUT_TAG, NOTEBOOK, PDF, REMOVE_CELL_TAG, cell_tags,
                     code_cells, mask_numbers, pdf_notebook_digest, pdf_pages, pdf_text,
                     sha256)

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
# The status bar reads "Python 3 (ipykernel) | Idle" once the kernel is connected
# (the toolbar's indicator already says idle at "No Kernel | Initializing").
KERNEL_IDLE = """() => [...document.querySelectorAll('.jp-StatusBar-TextItem')]
  .some(e => /^(?!No Kernel).+ \\| Idle$/.test(e.textContent.trim()))"""
PROMPTS = """() => [...document.querySelectorAll(
  '.jp-Notebook .jp-CodeCell .jp-InputPrompt')].map(e => e.textContent.trim())"""
DONE = f"() => ({KERNEL_IDLE})() && !({PROMPTS})().includes('[*]:')"
IDLE_SECONDS = 3  # a kernel idle this long has no queued cell left
STDERR = """() => [...document.querySelectorAll(
  '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
  .map(e => e.textContent.slice(-300))"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def letters(text):
    return re.sub(r"[^A-Za-z]", "", text)


class Lab:
    """A running JupyterLab server: its address and its token."""

    def __init__(self, process, url, token, log):
        self.process, self.url, self.token, self.log = process, url, token, log

    def headers(self):
        return {"Authorization": f"token {self.token}"}

    def redact(self, text):
        """text with the token masked (what may be printed)."""
        return text.replace(self.token, "<token>")


def new_token():
    """A fresh secret for one server: 256 random bits."""
    return secrets.token_urlsafe(32)


@contextlib.contextmanager
def lab_server(root, tmp, deadline):
    """JupyterLab from this Python serving root on 127.0.0.1 (its settings,
    log and runtime files in tmp), with a fresh token; yields a Lab once it
    answers, and stops it however the block ends (Ctrl-C included; a
    failure prints the end of its log, the token masked)."""
    token, port = new_token(), free_port()
    env = dict(os.environ, JUPYTER_TOKEN=token,
               JUPYTERLAB_SETTINGS_DIR=str(tmp / "lab-settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp / "lab-workspaces"),
               JUPYTER_RUNTIME_DIR=str(tmp / "runtime"))
    cmd = [str(Path(sys.executable).with_name("jupyter")), "lab", "--no-browser",
           "--allow-root", "--ip=127.0.0.1", f"--port={port}",
           f"--ServerApp.root_dir={root}", "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    log = tmp / "jupyterlab.log"
    with open(log, "w") as out:
        process = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    lab = Lab(process, f"http://127.0.0.1:{port}", token, log)
    try:
        wait_for_server(lab, deadline)
        yield lab
    except BaseException:
        print(lab.redact(log.read_text()[-3000:]), file=sys.stderr)
        raise
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        except ProcessLookupError:
            pass


def wait_for_server(lab, deadline):
    request = urllib.request.Request(f"{lab.url}/api/status", headers=lab.headers())
    while time.monotonic() < deadline:
        if lab.process.poll() is not None:
            raise RuntimeError("JupyterLab exited")
        try:
            urllib.request.urlopen(request, timeout=2)
            return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError("JupyterLab did not start")


def export_from_menu(lab, tmp, deadline):
    """Run all cells in JupyterLab, export to PDF from the menu; the PDF's path."""
    def ms():
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("out of time")
        return left * 1000

    with sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(tmp / "chromium-profile"), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_ARGS, accept_downloads=True,  # and nothing into ~/.config
            extra_http_headers=lab.headers(),  # the first page sets a login cookie
            env=dict(os.environ, XDG_CONFIG_HOME=str(tmp), XDG_CACHE_HOME=str(tmp)))
        try:
            page = browser.pages[0] if browser.pages else browser.new_page()
            downloads = []  # reported on the opener or on the new tab
            keep = lambda download: downloads.append(download)
            page.on("download", keep)
            browser.on("page", lambda tab: tab.on("download", keep))
            page.goto(f"{lab.url}/lab/tree/{NOTEBOOK}", timeout=ms())
            # Run All while the kernel is still starting clears every output.
            page.wait_for_function(KERNEL_IDLE, timeout=ms(), polling=200)
            def menu(name):  # an item of the menu bar or of an open menu
                return page.locator(".lm-MenuBar-itemLabel, .lm-Menu-itemLabel",
                                    has_text=re.compile(f"^{re.escape(name)}$"))
            ui = lambda: min(30_000, ms())
            menu("Run").click(timeout=ui())
            menu("Run All Cells").click(timeout=ui())
            started = time.monotonic()
            page.wait_for_selector('.jp-InputPrompt:text-is("[*]:")', timeout=ui())
            # Collapsed cells show no prompt: done once the kernel stays idle
            # (queued cells keep it busy); the saved counts are checked after
            while True:
                page.wait_for_function(DONE, timeout=ms(), polling=500)
                time.sleep(IDLE_SECONDS)
                if page.evaluate(DONE):
                    break
            print(f"Run All Cells: {time.monotonic() - started:.0f} s")
            stderr = page.evaluate(STDERR)
            if stderr:
                raise AssertionError(f"a cell wrote to stderr: {stderr}")

            menu("File").click(timeout=ui())
            menu("Save and Export Notebook As").hover(timeout=ui())
            menu("PDF").click(timeout=ui())
            limit = time.monotonic() + 180  # the server needs ~15 s
            while not downloads:
                if time.monotonic() > limit:
                    raise TimeoutError("no PDF download in 3 minutes")
                page.wait_for_timeout(min(500, ms()))
            pdf = tmp / "menu.pdf"
            downloads[0].save_as(pdf)
            if downloads[0].suggested_filename != PDF:
                raise AssertionError(f"download named {downloads[0].suggested_filename}")
            return pdf
        except Exception:
            page.screenshot(path=tmp / "failure.png")
            raise
        finally:
            browser.close()


class FigureNotFound(Exception):
    """A figure's text is not one run in the PDF's text."""


def raw_text(pdf):
    """pdftotext's text in the order it is drawn (-raw): a figure's text is
    one run, in the figure's own order. pdf: a path or a PDF's bytes."""
    data = pdf if isinstance(pdf, bytes) else None
    return subprocess.run(["pdftotext", "-raw", "-" if data else str(pdf), "-"],
                          input=data, check=True, capture_output=True).stdout.decode()


def page_texts(pdf):
    return raw_text(pdf).split("\f")[:pdf_pages(pdf)]


def words(text):
    """Words, rejoined across hyphenated line breaks."""
    return re.sub(r"-\n", "", text).split()


def shown_figures(nb):
    """The PDF (bytes) of every figure the notebook's PDF shows, in order."""
    return [base64.b64decode(output.data["application/pdf"])
            for cell in code_cells(nb) if REMOVE_CELL_TAG not in cell_tags(cell)
            for output in cell.outputs if "application/pdf" in output.get("data", {})]


def outside_figures(pdf, figures):
    """Each page's words outside the figures, numbers masked and a run of
    numbers as one: what a new run of the notebook leaves as it was.
    figures: the PDFs (bytes) the notebook shows, in order; each one's text
    is taken out where it is found, word for word, after the previous one's."""
    pages = [words(text) for text in page_texts(pdf)]
    at = (0, 0)
    for number, figure in enumerate(figures, 1):
        run = words(raw_text(figure))
        at = find_run(pages, run, at)
        if at is None:
            raise FigureNotFound(f"the text of figure {number} is not in {pdf}")
        page, start = at
        del pages[page][start:start + len(run)]
    return [masked(page) for page in pages]


def normalize(text):
    """The text's words, masked, as one string (for `in` checks)."""
    return " ".join(masked(words(text)))


def masked(words):
    """Each number masked, a run of them as one (timings, round-off)."""
    words = mask_numbers(" ".join(words)).split()
    return [w for i, w in enumerate(words) if not (w == "#" and i and words[i - 1] == "#")]


def find_run(pages, run, start):
    """(page, index) where the word list run first occurs in pages, at or
    after start; None if nowhere."""
    first_page, first_index = start
    for page in range(first_page, len(pages)):
        words = pages[page]
        for index in range(first_index if page == first_page else 0,
                           len(words) - len(run) + 1):
            if words[index:index + len(run)] == run:
                return page, index
    return None


def differences(a_pages, b_pages):
    """Where two documents (lists of pages, each a list of words) differ,
    page by page, as report lines."""
    found = [f"  page {number}: {' '.join(a[max(i1 - 5, 0):i2 + 5])[:300]}\n"
             f"  page {number}: {' '.join(b[max(j1 - 5, 0):j2 + 5])[:300]}"
             for number, (a, b) in enumerate(zip(a_pages, b_pages), 1)
             for tag, i1, i2, j1, j2 in
             difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
             if tag != "equal"]
    problems = [f"{len(found)} differences, the first ones:"] + found[:5] if found else []
    if len(a_pages) != len(b_pages):
        problems.insert(0, f"{len(a_pages)} pages, {len(b_pages)} pages")
    return problems


def against_reference(reference, notebook, menu_pdf, saved):
    """The reference PDF (exported from the notebook file's bytes) against
    JupyterLab's (from the notebook it saved), outside their figures."""
    if pdf_notebook_digest(reference) != sha256(notebook):
        return [f"{reference} was not exported from this notebook: run make pdf"]
    ours = shown_figures(nbformat.reads(notebook.decode("utf-8"), as_version=4))
    try:
        return differences(outside_figures(reference, ours),
                           outside_figures(menu_pdf, shown_figures(saved)))
    except FigureNotFound as error:
        return [str(error)]


def check(saved, menu_pdf, cli_pdf, reference, notebook):
    """The failures, as a list of strings. notebook: the bytes of the
    notebook file the reference PDF was exported from."""
    problems = []
    errors = [f"cell {i}: {o.ename}" for i, c in enumerate(saved.cells)
              if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    if errors:
        problems.append(f"error outputs: {errors}")
    exact = [[text.split() for text in page_texts(pdf)] for pdf in (cli_pdf, menu_pdf)]
    for found, what in (
            (differences(*exact), "CLI export of the notebook JupyterLab ran, "
             "then JupyterLab's export"),
            (against_reference(reference, notebook, menu_pdf, saved),
             f"{reference}, then JupyterLab's export (outside figures, numbers masked)")):
        if found:
            problems += [f"{what}: {found[0]}"] + found[1:]

    def source_lines(cell):
        return {normalize(line) for line in cell.source.splitlines()
                if len(line.strip()) >= 20}

    raw = pdf_text(menu_pdf)
    menu = normalize(raw)
    drawn = raw_text(menu_pdf)  # the order printed: columns of a table stay in rows
    code = [c for c in saved.cells if c.cell_type == "code"]
    hidden = [c for c in code if HIDE_INPUT_TAG in cell_tags(c)]
    shown = set().union(*(source_lines(c) for c in code if c not in hidden))
    if not any(line in menu for line in shown):
        problems.append("no source line of a shown code cell found: the check is blind")
    for cell in hidden:
        texts = [o.get("data", {}).get("text/markdown") or o.get("text", "")
                 for o in cell.outputs]
        # a hidden line may rightly appear as part of a shown line, or as
        # the cell's own output (a prose template renders its words)
        output = normalize("\n".join(filter(None, texts)))
        leaked = [line for line in source_lines(cell) - shown
                  if line in menu and line not in output
                  and not any(line in other for other in shown)]
        if leaked:
            problems.append(f"source of a hidden cell printed: {leaked[:3]}")
        for text in filter(None, texts):
            start = letters(re.split(r"[$`]", text)[0])[:60]
            if start not in letters(drawn):
                problems.append(f"output of a hidden cell missing: {start}")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", nargs="?", default=NOTEBOOK, type=Path)
    parser.add_argument("reference", nargs="?", default=Path("build") / PDF, type=Path)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    deadline = time.monotonic() + args.timeout
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))
    if not shutil.which(CHROMIUM):
        sys.exit(f"no chromium at {CHROMIUM}: install it (Debian: apt-get install"
                 " chromium) or set CHROMIUM to a Chromium or Chrome binary")
    reference = args.reference.resolve(strict=True)
    started = time.monotonic()

    with tempfile.TemporaryDirectory(prefix="hw2-e2e-") as tmpdir:
        tmp = Path(tmpdir)
        root = tmp / "project"
        root.mkdir()
        notebook = args.notebook.read_bytes()  # what the reference was exported from
        (root / NOTEBOOK).write_bytes(notebook)
        data = args.notebook.resolve().parent / "data"
        if data.exists():
            (root / "data").symlink_to(data)
        (root / "figures").mkdir()
        original = nbformat.read(root / NOTEBOOK, as_version=4)
        n_code = sum(c.cell_type == "code" for c in original.cells)

        try:
            with lab_server(root, tmp, deadline) as lab:
                menu_pdf = export_from_menu(lab, tmp, deadline)
        except BaseException:
            if (tmp / "failure.png").exists():
                shutil.copy(tmp / "failure.png", reference.parent / "e2e-failure.png")
            raise

        # nbconvert's command line on the notebook as JupyterLab ran and saved it
        saved = nbformat.read(root / NOTEBOOK, as_version=4)
        if [c.source for c in saved.cells] != [c.source for c in original.cells]:
            sys.exit("JupyterLab saved other cells than it was given")
        counts = [c.execution_count for c in saved.cells if c.cell_type == "code"]
        if counts != list(range(1, n_code + 1)):  # a fresh kernel counts 1, 2, ...
            sys.exit(f"not every cell ran in JupyterLab: execution counts {counts}")
        cli_pdf = tmp / PDF
        subprocess.run([Path(sys.executable).with_name("jupyter"), "nbconvert", "--to",
                        "pdf", NOTEBOOK, "--output-dir", tmp, "--log-level", "ERROR"],
                       cwd=root, check=True, timeout=max(deadline - time.monotonic(), 1))
        problems = check(saved, menu_pdf, cli_pdf, reference, notebook)
        print(f"pages: menu export {pdf_pages(menu_pdf)}, CLI export {pdf_pages(cli_pdf)},"
              f" {reference} {pdf_pages(reference)}; {time.monotonic() - started:.0f} s in all")
        if problems:
            shutil.copy(menu_pdf, reference.parent / "e2e-menu.pdf")
            shutil.copy(root / NOTEBOOK, reference.parent / f"e2e-{NOTEBOOK}")
            sys.exit(f"e2e export FAILED (JupyterLab's PDF and notebook kept as"
                     f" e2e-menu.pdf, e2e-{NOTEBOOK} in {reference.parent}):\n"
                     + "\n".join(problems))
    print("e2e export OK: JupyterLab's PDF equals the reference")


if __name__ == "__main__":
    main()
