"""tools/: how the build executes, saves and loads notebooks, one build at a
time, and assembles submission/ as one unit."""
import ast
import contextlib
import errno
import fcntl
import json
import os
import re
import resource
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from nbclient.exceptions import CellExecutionError
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

import hand_in
from definitions import load_definitions
from notebook import Stopped, execute
from project import (DIGEST_PREFIX, EXPORT_TAG, HAND_IN, MAX_CODE_LINE, NOTEBOOK,
                     PAGE_LIMIT, PDF, STEM, SUBMISSION, TEXT_WIDTH_NAME,
                     pdf_notebook_digest, pdf_pages, pdf_text, run_digest, sha256)
from run_notebook import main

TOOLS = Path(__file__).resolve().parents[1] / "tools"
RUN_NOTEBOOK = [sys.executable, str(TOOLS / "run_notebook.py")]
LOCK_CLI = [sys.executable, str(TOOLS / "lock.py")]


def write(path, *cells, kernel="python3"):
    nb = new_notebook(cells=list(cells))
    nb.metadata["kernelspec"] = {"name": kernel, "language": "python",
                                 "display_name": "Python 3"}
    nbformat.write(nb, path)
    return path


def test_execute_in_place_numbers_cells_in_order(tmp_path):
    path = write(tmp_path / "ok.ipynb", new_markdown_cell("# t"),
                 new_code_cell("x = 2"), new_code_cell("print(x * 21)"))
    path.chmod(0o640)
    execute(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # kept by the save
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == [1, 2]
    assert code[1].outputs[0].text == "42\n"
    assert all("execution" not in c.metadata for c in code)  # no timestamps


def test_printed_text_is_stored_as_one_output(tmp_path):
    """Text printed in several messages (a flush, then a pause) is stored
    as one output, as Jupyter's UI shows it."""
    source = ("import time\nprint('a', flush=True)\ntime.sleep(0.3)\n"
              "print('b', flush=True)\ntime.sleep(0.3)\nprint('c')")
    path = write(tmp_path / "streams.ipynb", new_code_cell(source))
    execute(path)
    outputs = nbformat.read(path, as_version=4).cells[0].outputs
    assert [(o.name, o.text) for o in outputs] == [("stdout", "a\nb\nc\n")]


def test_failing_cell_fails_with_that_cells_error(tmp_path):
    path = write(tmp_path / "bad.ipynb", new_code_cell("y = 1"),
                 new_code_cell("raise ValueError('cell two broke')"))
    with pytest.raises(CellExecutionError) as error:
        execute(path)
    assert "raise ValueError('cell two broke')" in str(error.value)
    assert "cell two broke" in str(error.value)


def test_a_failing_cell_is_told_without_colour_codes_in_a_log(tmp_path):
    """stderr is a file (a CI log, `make pdf 2> log`): the traceback is
    plain text."""
    path = write(tmp_path / "bad.ipynb", new_code_cell("y = 1"),
                 new_code_cell("raise ValueError('cell two broke')"))
    with open(tmp_path / "log", "w+") as log:
        run = subprocess.run(RUN_NOTEBOOK + [str(path)], stderr=log, timeout=120)
        log.seek(0)
        text = log.read()
    assert run.returncode == 1
    assert "ValueError: cell two broke" in text
    assert "\x1b" not in text
    assert text.endswith(f"{path}: the file is unchanged.\n")


def limit_file_size():
    """In the child: files may not grow past 64 KiB, and writing past that
    fails with EFBIG instead of killing the process."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (2**16, 2**16))


def test_failed_save_leaves_the_notebook_intact(tmp_path):
    path = write(tmp_path / "big.ipynb", new_code_cell("print('x' * 2**17)"))
    before = path.read_bytes()
    run = subprocess.run(RUN_NOTEBOOK + [str(path)], capture_output=True,
                         text=True, timeout=120, preexec_fn=limit_file_size)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        f"{path}: not saved (File too large); the file is unchanged."]
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]


def wait_for_pid(path, timeout=60):
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text()):
        assert time.monotonic() < deadline, f"no {path.name}"
        time.sleep(0.1)
    return int(path.read_text())


SLOW_CELL = """import os, pathlib, time
pathlib.Path('kernel.pid').write_text(str(os.getpid()))
time.sleep(60)"""


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_signal_stops_the_run_and_leaves_the_notebook(tmp_path, name):
    signum = getattr(signal, name)
    path = write(tmp_path / "slow.ipynb", new_code_cell("x = 1"),
                 new_code_cell(SLOW_CELL))
    before = path.read_bytes()
    run = subprocess.Popen(RUN_NOTEBOOK + [str(path)], text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    kernel = wait_for_pid(tmp_path / "kernel.pid")
    run.send_signal(signum)
    _, stderr = run.communicate(timeout=30)
    assert run.returncode == 128 + signum
    assert stderr.splitlines() == [
        f"{path}: stopped by {name} in cell [2] "
        "(import os, pathlib, time); the file is unchanged."]
    assert path.read_bytes() == before
    assert sorted(tmp_path.iterdir()) == [tmp_path / "kernel.pid", path]
    with pytest.raises(ProcessLookupError):  # the kernel is gone too
        os.kill(kernel, 0)


@pytest.mark.parametrize("death", ["os._exit(1)", "os.kill(os.getpid(), 9)"])
def test_dead_kernel_is_reported_with_its_cell(tmp_path, death):
    path = write(tmp_path / "dies.ipynb", new_code_cell("import os"),
                 new_code_cell(death))
    before = path.read_bytes()
    with pytest.raises(Stopped) as stopped:
        execute(path)
    assert stopped.value.exit_code == 1
    assert str(stopped.value) == (f"{path}: the kernel died in cell [2] ({death}); "
                                  "the file is unchanged.")
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]


def test_kernel_is_this_python_whatever_kernelspecs_say(tmp_path, monkeypatch):
    stray = tmp_path / "jupyter" / "kernels" / "python3"
    stray.mkdir(parents=True)
    (stray / "kernel.json").write_text(json.dumps({
        "argv": ["/nonexistent/python", "-m", "ipykernel_launcher",
                 "-f", "{connection_file}"],
        "display_name": "Stray Python 3", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    spec = KernelSpecManager().get_kernel_spec("python3")
    assert spec.argv[0] == "/nonexistent/python"  # what Jupyter would start
    path = write(tmp_path / "which.ipynb",
                 new_code_cell("import sys\nprint(sys.executable)"),
                 kernel="ece685d-hw2")  # as saved from the named kernel
    nb = execute(path)
    assert nb.cells[0].outputs[0].text == sys.executable + "\n"
    assert nb.metadata.kernelspec.name == "python3"  # the portable name


def test_stamp_skips_a_run_whose_inputs_are_unchanged(tmp_path, capsys):
    path = write(tmp_path / "nb.ipynb", new_markdown_cell("# t"),
                 new_code_cell("import random\nprint(random.random())"))
    data = tmp_path / "data.txt"
    data.write_text("1")
    argv = [str(path), "--stamp", str(tmp_path / "b" / "stamp"), str(data)]

    def output():
        return nbformat.read(path, as_version=4).cells[1].outputs[0].text

    main(argv)
    first = output()
    main(argv)
    assert "unchanged since its last run" in capsys.readouterr().out
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].source = "# edited text"
    nbformat.write(nb, path)
    main(argv)
    assert output() == first  # markdown does not change what cells print
    data.write_text("2")
    main(argv)
    second = output()
    assert second != first
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].source += "  # edited code"
    nbformat.write(nb, path)
    main(argv)
    assert output() != second


def test_second_build_waits_for_the_first(tmp_path):
    lockfile = tmp_path / "build" / ".lock"
    lockfile.parent.mkdir()
    with open(lockfile, "w") as first:
        fcntl.flock(first, fcntl.LOCK_EX)
        second = subprocess.Popen(
            LOCK_CLI + [str(lockfile), "echo", "built"], text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        with pytest.raises(subprocess.TimeoutExpired):
            second.wait(timeout=1)
    stdout, stderr = second.communicate(timeout=10)
    assert "another build is running in this folder" in stderr
    assert stdout == "built\n"


def test_the_command_runs_holding_the_lock(tmp_path):
    lockfile = tmp_path / "build" / ".lock"
    probe = ("import fcntl, sys\n"
             "lock = open(sys.argv[1])\n"
             "try:\n"
             "    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
             "except BlockingIOError:\n"
             "    print('held')")
    run = subprocess.run(LOCK_CLI + [str(lockfile), sys.executable, "-c",
                                     probe, str(lockfile)],
                         capture_output=True, text=True, timeout=30)
    assert run.stdout == "held\n"


def test_make_stops_on_an_old_python_before_making_a_venv(tmp_path, root):
    old = tmp_path / "python3.10"
    old.write_text("#!/bin/sh\n# this Python, claiming to be 3.10\n"
                   f'exec {shlex.quote(sys.executable)} -c '
                   '"import sys; sys.version_info = (3, 10, 13); $2"\n')
    old.chmod(0o755)
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    start = time.monotonic()
    run = subprocess.run(["make", "-C", str(root), "pdf", f"PYTHON={old}",
                          f"VENV={venv}"], capture_output=True, text=True,
                         env=env, timeout=60)
    assert run.returncode != 0
    assert f"Python >= 3.11 needed; {old} is 3.10." in run.stderr
    assert not venv.exists()
    assert time.monotonic() - start < 10


def test_load_definitions_runs_only_export_cells(tmp_path):
    exported = new_code_cell("def f():\n    return 7")
    exported.metadata["tags"] = [EXPORT_TAG]
    path = write(tmp_path / "defs.ipynb", exported,
                 new_code_cell("raise RuntimeError('not exported')"))
    module = load_definitions(path, name="defs_under_test")
    assert module.f() == 7


def test_system_deps_stop_when_apt_leaves_a_program_out(tmp_path):
    """As root with apt-get, but apt installs nothing: the script says what
    is still missing and fails, before anything runs the notebook."""
    for name, body in {"id": "echo 0", "apt-get": "exit 0"}.items():
        (tmp_path / name).write_text(f"#!/bin/sh\n{body}\n")
        (tmp_path / name).chmod(0o755)
    (tmp_path / "cat").symlink_to("/bin/cat")
    run = subprocess.run(["/bin/bash", str(TOOLS / "ensure_system_deps.sh")],
                         env={"PATH": str(tmp_path)}, capture_output=True,
                         text=True, timeout=30)
    assert run.returncode == 1
    assert "Still missing after apt-get install: xelatex pandoc" in run.stderr


SAVE_MARK = "saved by the student while the build ran"


def test_a_version_saved_during_the_run_is_kept(tmp_path):
    """Someone saves the notebook while it runs: their file stays as they
    saved it, the executed copy goes to build/, and the run says so."""
    path = write(tmp_path / "nb.ipynb", new_code_cell(SLOW_CELL.replace("60", "1")))
    run = subprocess.Popen(RUN_NOTEBOOK + [str(path)], text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for_pid(tmp_path / "kernel.pid")
    edited = nbformat.read(path, as_version=4)
    edited.cells.append(new_markdown_cell(SAVE_MARK))
    nbformat.write(edited, path)
    saved = path.read_bytes()
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 1
    assert stderr.splitlines() == [
        f"{path} was saved while it ran: your version is kept, the executed "
        f"copy is {tmp_path / 'build' / path.name}; run the build again."]
    assert path.read_bytes() == saved
    aside = nbformat.read(tmp_path / "build" / path.name, as_version=4)
    assert aside.cells[0].execution_count == 1


CONFLICTED = """{
 "cells": [
<<<<<<< HEAD
  {"cell_type": "code", "source": "x = 1", "metadata": {}, "outputs": [], "execution_count": null}
=======
  {"cell_type": "code", "source": "x = 2", "metadata": {}, "outputs": [], "execution_count": null}
>>>>>>> other
 ],
 "metadata": {}, "nbformat": 4, "nbformat_minor": 5
}
"""


@pytest.mark.parametrize("text, why", [
    (CONFLICTED, "Expecting value: line 3 column 1; it looks like an unresolved git merge "
     "conflict"),
    ('{"cells": [{"cell_type": "code", "source": "x = 1', "Unterminated string "
     "starting at: line 1 column 44"),
    ("{}", "no list of cells"),
    ("[]", "no list of cells"),
    ('{"cells": [{"cell_type": "code", "source": "1"}], "metadata": {}}',
     "nbformat is None, not 4"),
    ('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}',
     "it has no code cells"),
    ('{"cells": [{"cell_type": "code", "source": "1"}], "metadata": {}, "nbformat": 4}',
     '"nbformat_minor" is missing or not a number'),
    ('{"cells": [{"cell_type": "code", "source": "1"}], "nbformat": 4, "nbformat_minor": 5}',
     '"metadata" is missing'),
])
def test_an_invalid_notebook_is_refused_untouched(tmp_path, text, why):
    path = tmp_path / "nb.ipynb"
    path.write_text(text)
    run = subprocess.run(RUN_NOTEBOOK + [str(path), "--stamp", str(tmp_path / "s")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    [line] = run.stderr.splitlines()
    assert line.startswith(f"nb.ipynb is not a valid notebook: {why}")
    assert line.endswith("The file was not touched.")
    assert path.read_text() == text


def test_ctrl_c_in_the_test_process_stops_it(tmp_path):
    """execute() called by pytest: Ctrl-C raises KeyboardInterrupt (the suite
    stops), instead of failing one test."""
    path = write(tmp_path / "slow.ipynb", new_code_cell(SLOW_CELL))
    before = path.read_bytes()
    pid_file = tmp_path / "kernel.pid"
    threading.Thread(target=lambda: (wait_for_pid(pid_file),
                                     os.kill(os.getpid(), signal.SIGINT)),
                     daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        execute(path)
    assert path.read_bytes() == before


@pytest.mark.skipif(not shutil.which("unshare"), reason="needs unshare")
def test_no_loopback_network_fails_at_once(tmp_path):
    path = write(tmp_path / "nb.ipynb", new_code_cell("x = 1"))
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    if probe.returncode:
        pytest.skip("cannot make a network namespace here")
    start = time.monotonic()
    run = subprocess.run(["unshare", "-n"] + RUN_NOTEBOOK + [str(path)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    [line] = run.stderr.splitlines()
    assert "the kernel cannot be reached: no loopback network" in line
    assert time.monotonic() - start < 20


FONT_CACHE_PROBE = """import glob, matplotlib
cache = matplotlib.get_cachedir()
print(len(glob.glob(cache + '/fontlist-*.json')), cache)
import matplotlib.pyplot"""


@pytest.mark.parametrize("home", ["empty", "missing", "cache-is-a-file"])
def test_font_cache_is_built_before_the_first_cell(tmp_path, monkeypatch, home):
    """A fresh HOME (a new container), none, or one where Matplotlib cannot
    write: its font cache is built before the first cell runs (built by a
    cell, on a busy machine, it logs to stderr), where the kernel finds it."""
    home_dir, scratch = tmp_path / "home", tmp_path / "scratch"
    if home != "missing":
        home_dir.mkdir()
    if home == "cache-is-a-file":
        (home_dir / ".cache").write_text("")
    monkeypatch.setenv("HOME", str(home_dir))
    for name in ("MPLCONFIGDIR", "IPYTHONDIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    path = write(tmp_path / "nb.ipynb", new_code_cell(FONT_CACHE_PROBE))
    nb = execute(path, scratch=scratch)
    cache = home_dir / ".cache" / "matplotlib" if home == "empty" else scratch / "mplconfig"
    assert [(o.name, o.text) for o in nb.cells[0].outputs] == [("stdout", f"1 {cache}\n")]
    assert home_dir.exists() == (home != "missing")


def test_text_on_stderr_stops_the_run_naming_the_cell(tmp_path):
    """A warning would be printed in the PDF: the run fails, the file and
    the stamp stay as they were."""
    path = write(tmp_path / "nb.ipynb", new_code_cell("x = 1"),
                 new_code_cell("import sys\nprint('careful', file=sys.stderr)"))
    before = path.read_bytes()
    stamp = tmp_path / "build" / "stamp"
    run = subprocess.run(RUN_NOTEBOOK + [str(path), "--stamp", str(stamp)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        f"{path}: cell [2] (import sys) wrote to stderr: careful",
        "The PDF would show it, so the file is unchanged: make that cell print "
        "nothing to stderr (fix or silence the warning), then run the build again."]
    assert path.read_bytes() == before
    assert not stamp.exists()


# submission/ as one unit (tools/hand_in.py)

def project(folder, *cells):
    """A project folder with a small notebook named NOTEBOOK, its code cells
    stored as executed (each printing 42)."""
    cells += (new_code_cell(f"{TEXT_WIDTH_NAME} = 6.5"),)  # the template reads it
    for count, cell in enumerate((c for c in cells if c.cell_type == "code"), 1):
        cell.execution_count = count
        cell.outputs = [new_output("stream", name="stdout", text="42\n")]
    return write(folder / NOTEBOOK, *cells)


def tiny_pdf(keywords):
    """A one-page PDF whose Keywords are keywords."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
               b"<< /Keywords (" + keywords.encode() + b") >>"]
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    return out + (b"trailer\n<< /Size %d /Root 1 0 R /Info 4 0 R >>\n"
                  b"startxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))


@pytest.fixture
def exports(monkeypatch):
    """hand_in.export replaced by one that writes a tiny PDF recording the
    notebook's digest, as the template does (no LaTeX: fast); the calls."""
    calls = []

    def export(data, folder, log):
        calls.append(sha256(data))
        return tiny_pdf(DIGEST_PREFIX + sha256(data))
    monkeypatch.setattr(hand_in, "export", export)
    return calls


@pytest.fixture
def copy_of_built(tmp_path, exports):
    """A project folder after one hand-in build."""
    path = project(tmp_path, new_markdown_cell("# A title"), new_code_cell("print(42)"))
    hand_in.build(path, None, [])
    return path


def hand_in_files(folder):
    return {p.name: p.read_bytes() for p in (folder / SUBMISSION).iterdir()}


def test_hand_in_pairs_the_notebook_with_its_pdf(copy_of_built, exports):
    path, submission = copy_of_built, copy_of_built.parent / SUBMISSION
    assert sorted(hand_in_files(path.parent)) == sorted(HAND_IN)
    assert (submission / NOTEBOOK).read_bytes() == path.read_bytes()
    assert pdf_notebook_digest(submission / PDF) == sha256(path.read_bytes())
    assert hand_in.build(path, None, []).endswith("up to date: " + " ".join(HAND_IN))
    assert exports == [sha256(path.read_bytes())]  # exported once


def test_a_failed_export_keeps_the_previous_hand_in(copy_of_built, monkeypatch):
    path = copy_of_built
    previous = hand_in_files(path.parent)
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(new_markdown_cell("an edit"))
    nbformat.write(nb, path)

    def fail(*args):
        raise hand_in.Failed("LaTeX broke")
    monkeypatch.setattr(hand_in, "export", fail)
    with pytest.raises(hand_in.Failed):
        hand_in.build(path, None, [])
    assert hand_in_files(path.parent) == previous
    status = hand_in.status(path)
    assert status.startswith(f"{SUBMISSION}/ still holds the previous build")
    assert status.endswith(f"not the current {NOTEBOOK}.")


def test_an_older_copy_restored_is_handed_in(copy_of_built):
    """cp -p of another version (older mtime): decided by content."""
    path = copy_of_built
    (path.parent / SUBMISSION / NOTEBOOK).write_text("{}")
    os.utime(path, (1, 1))
    hand_in.build(path, None, [])
    assert (path.parent / SUBMISSION / NOTEBOOK).read_bytes() == path.read_bytes()


def test_a_truncated_pdf_is_exported_again(copy_of_built, exports):
    path = copy_of_built
    built = path.parent / "build" / PDF
    built.write_bytes(built.read_bytes()[:len(built.read_bytes()) // 2])
    os.utime(built, (time.time() + 60,) * 2)  # newer than everything
    hand_in.build(path, None, [])
    submitted = path.parent / SUBMISSION / PDF
    assert pdf_notebook_digest(submitted) == sha256(path.read_bytes())
    assert submitted.read_bytes().rstrip().endswith(b"%%EOF")
    assert len(exports) == 2


def test_a_notebook_jupyter_would_reject_fails_in_one_line(tmp_path, capsys):
    """Valid JSON with cells, but not what the nbformat schema allows (a
    code cell without outputs): one line, not nbconvert's traceback."""
    path = project(tmp_path, new_code_cell("x = 1"))
    nb = json.loads(path.read_text())
    del nb["cells"][0]["outputs"]
    path.write_text(json.dumps(nb))
    with pytest.raises(SystemExit):
        hand_in.main([str(path)])
    assert capsys.readouterr().err == ""
    with pytest.raises(SystemExit) as exit:
        hand_in.main([str(path)])
    assert str(exit.value) == (f"{path}: not a valid notebook ('outputs' is a required "
                               "property); save it from Jupyter, then run make pdf again")


def enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("module, name, written", [
    (os, "fsync", f"build/{PDF}"),  # the export's PDF: write_atomic's last write
    (shutil, "copyfile", f"{SUBMISSION}/")])  # the PDF copied into the new hand-in
def test_a_full_disk_fails_in_one_line_and_leaves_no_temp_file(
        copy_of_built, monkeypatch, module, name, written):
    path = copy_of_built
    previous = hand_in_files(path.parent)
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(new_markdown_cell("an edit"))  # to be exported again
    nbformat.write(nb, path)
    (path.parent / "build" / "stamp").write_text(run_digest(json.loads(path.read_text()), []))
    listing = sorted(path.parent.rglob("*"))
    monkeypatch.chdir(path.parent)
    monkeypatch.setattr(module, name, enospc)
    with pytest.raises(SystemExit) as exit:
        hand_in.main([NOTEBOOK, "--stamp", "build/stamp"])
    assert str(exit.value) == (f"{NOTEBOOK}: disk full while writing {written}; "
                               "free space and run make pdf again")
    assert hand_in_files(path.parent) == previous
    assert sorted(path.parent.rglob("*")) == listing


@pytest.mark.parametrize("broken, error", [
    ("Vectors in $\\R^n$ are columns.", "Undefined control sequence"),
    # a runaway argument: LaTeX's log gives no line number
    ("A half is $\\frac{1}{$ here.", "File ended while scanning use of \\frac"),
])
def test_a_latex_error_names_the_cell(tmp_path, broken, error):
    path = project(tmp_path, new_markdown_cell("# Title"),
                   new_markdown_cell("A third is $\\frac{1}{3}$ here."),
                   new_markdown_cell(broken), new_code_cell("x = 1"),
                   new_markdown_cell("More words here."))
    with pytest.raises(hand_in.Failed) as failed:
        hand_in.build(path, None, [])
    message = str(failed.value)
    assert f"in cell 2 (markdown: {broken})" in message
    assert error in message
    assert len(message.splitlines()) <= 4
    assert not (tmp_path / SUBMISSION).exists()


def kill_first_xelatex(parent):
    """Kill (SIGKILL) the first xelatex that parent starts, once it runs."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for stat_file in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError):
                name, rest = stat_file.read_text().rsplit(")", 1)
                if name.endswith("(xelatex") and int(rest.split()[1]) == parent:
                    os.kill(int(stat_file.parent.name), signal.SIGKILL)
                    return
        time.sleep(0.01)


def test_xelatex_killed_during_the_export_is_no_latex_error(tmp_path):
    path = project(tmp_path, new_markdown_cell("# Title"), new_code_cell("x = 1"))
    killer = threading.Thread(target=kill_first_xelatex, args=(os.getpid(),))
    killer.start()
    with pytest.raises(hand_in.Failed) as failed:
        hand_in.build(path, None, [])
    killer.join()
    assert str(failed.value) == (
        "the PDF export stopped: xelatex ended before finishing its run, with no "
        "LaTeX error (was it killed?); run make pdf again (its output: "
        f"{tmp_path / 'build' / STEM}.log)")
    assert not (tmp_path / SUBMISSION).exists()


def test_every_build_says_its_pages_and_how_full_each_is(tmp_path):
    """The room left, before a change runs out of it: the pages against
    the limit, and how far down each page is used (page 2 holds a rule of
    half the text height, nothing else)."""
    cells = [new_markdown_cell("# Title"), new_code_cell(f"{TEXT_WIDTH_NAME} = 6.5"),
             new_markdown_cell("\\newpage"),
             new_markdown_cell("\\noindent\\rule{2pt}{0.5\\textheight}")]
    cells[1].execution_count = 1
    path = write(tmp_path / NOTEBOOK, *cells)
    for _ in ("replaced", "up to date"):
        said = hand_in.build(path, None, []).splitlines()
        assert len(said) == 2 and said[1].startswith(f"{SUBMISSION}/")
        assert re.fullmatch(rf"{PDF}: 2 of {PAGE_LIMIT} pages; each filled to "
                            r"\(%\): \d 50", said[0]), said[0]


def test_a_code_line_too_long_is_refused_before_the_run(tmp_path):
    """The layout rules of the sources hold before the notebook runs: no
    kernel starts, the file stays as it was."""
    long_line = "x = " + "1" * MAX_CODE_LINE
    path = write(tmp_path / "nb.ipynb", new_code_cell(SLOW_CELL.replace("60", "0")),
                 new_code_cell(long_line))
    before = path.read_bytes()
    run = subprocess.run(RUN_NOTEBOOK + [str(path), "--stamp", str(tmp_path / "stamp")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert run.stderr.splitlines() == [
        f"{path} breaks the layout rules, so it was not run (the file is unchanged):",
        f"  cell 1 (code): a code line of {len(long_line)} characters (at most "
        f"{MAX_CODE_LINE} fit the page): {long_line[:40]}"]
    assert not (tmp_path / "kernel.pid").exists()
    assert path.read_bytes() == before and not (tmp_path / "stamp").exists()


# build/derivations.pdf judged by content (tools/derivations.py)

def tex(folder, body):
    """folder/d.tex, a one-page LaTeX document around body."""
    path = folder / "d.tex"
    path.write_text("\\documentclass{article}\n\\begin{document}\n"
                    f"{body}\n\\end{{document}}\n")
    return path


def compile_tex(source):
    """tools/derivations.py on source, into build/ beside it: (exit code,
    stdout + stderr)."""
    run = subprocess.run([sys.executable, str(TOOLS / "derivations.py"), str(source),
                          str(source.parent / "build")],
                         capture_output=True, text=True, timeout=120)
    return run.returncode, run.stdout + run.stderr


def test_a_truncated_derivations_pdf_is_compiled_again(tmp_path):
    source = tex(tmp_path, "First version.")
    pdf = tmp_path / "build" / "d.pdf"
    assert compile_tex(source) == (0, "compiled d.tex to build/d.pdf\n")
    whole = pdf.read_bytes()
    pdf.write_bytes(whole[:len(whole) // 2])  # as a build killed while writing leaves it
    os.utime(pdf, (time.time() + 60,) * 2)  # newer than everything
    assert compile_tex(source) == (0, "compiled d.tex to build/d.pdf\n")
    assert pdf_pages(pdf) == 1 and "First version." in pdf_text(pdf)
    assert compile_tex(source) == (0, "")  # now current: not compiled again


def test_an_older_derivations_source_restored_is_compiled(tmp_path):
    """cp -p of an older version (its mtime older than the PDF's)."""
    backup = tex(tmp_path, "Old words.").rename(tmp_path / "backup.tex")
    os.utime(backup, (1, 1))
    source = tex(tmp_path, "New words.")
    assert compile_tex(source)[0] == 0
    shutil.copy2(backup, source)
    pdf = tmp_path / "build" / "d.pdf"
    assert compile_tex(source) == (0, "compiled d.tex to build/d.pdf\n")
    assert "Old words." in pdf_text(pdf)


def test_a_latex_error_in_the_derivations_names_its_line(tmp_path):
    source = tex(tmp_path, "Fine.")
    assert compile_tex(source)[0] == 0
    before = (tmp_path / "build" / "d.pdf").read_bytes()
    tex(tmp_path, "Vectors in $\\R^n$.")
    log = tmp_path / "build" / "d.log"
    assert compile_tex(source) == (1, "LaTeX error at d.tex:3: Undefined control "
                                   f"sequence. (Vectors in $\\R)\n  full log: {log}\n")
    assert (tmp_path / "build" / "d.pdf").read_bytes() == before
    assert compile_tex(source)[0] == 1  # not current: compiled (and failing) again


def test_pytest_on_a_notebook_never_run_says_to_build_first(tmp_path, root):
    """Outputs cleared in Jupyter, then `pytest` alone: one line saying
    what to run, not an assertion per test."""
    (tmp_path / "tools").symlink_to(root / "tools")
    shutil.copytree(root / "tests", tmp_path / "tests",
                    ignore=shutil.ignore_patterns("__pycache__"))
    nb = nbformat.read(root / NOTEBOOK, as_version=4)
    for cell in nb.cells:  # as Edit > Clear Outputs of All Cells leaves it
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(nb, tmp_path / NOTEBOOK)
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "tests/test_notebook.py", "tests/test_pdfs.py"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == pytest.ExitCode.USAGE_ERROR
    assert "assert" not in run.stdout
    assert run.stderr.strip().splitlines() == [
        f"ERROR: {NOTEBOOK} holds no complete run (outputs cleared, or cells run out "
        "of order): run `make test` (or `make pdf`) first, which runs it"]


def test_benchmark_run_all_prints_only_its_figures(tmp_path, capfd):
    """`make benchmark`'s fresh kernel writes nothing to the terminal (no
    "Kernel is running over TCP without encryption" warning)."""
    from benchmark import run_all
    (tmp_path / "data").mkdir()
    path = write(tmp_path / NOTEBOOK, new_code_cell("import os\nimport torch\n"),
                 new_code_cell("x = 1"))
    run_all(path)
    out, err = capfd.readouterr()
    assert out.startswith("Run All: imports cell ") and out.count("\n") == 1
    assert err == ""


def test_gitignore_covers_the_notebooks_exports(root):
    """What Jupyter's exports leave next to the notebook is never committed."""
    if not (root / ".git").exists() or not shutil.which("git"):
        pytest.skip("not a git checkout")
    names = [f"{STEM}.pdf", f"{STEM}.html", f"{STEM}.tex", f"{STEM}_files/x.png"]
    run = subprocess.run(["git", "check-ignore", "--no-index", *names], cwd=root,
                         capture_output=True, text=True)
    assert run.stdout.split() == names


def tool_imports():
    """{module of tools/: the modules of tools/ it imports, anywhere in it}."""
    names = {path.stem for path in TOOLS.glob("*.py")}
    graph = {}
    for path in TOOLS.glob("*.py"):
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
        graph[path.stem] = imported & names
    return graph


def test_tool_imports_run_one_way():
    """No circle among tools/ modules; the command run_notebook is imported
    by none of them."""
    graph = tool_imports()
    assert "notebook" in graph["run_notebook"] and "project" in graph["notebook"]
    assert [name for name, imported in graph.items() if "run_notebook" in imported] == []
    left = dict(graph)
    while left:  # take away modules that import nothing left, until none remain
        leaves = [name for name, imported in left.items() if not imported & left.keys()]
        assert leaves, f"import circle among {sorted(left)}"
        for name in leaves:
            del left[name]


def test_a_failing_cell_in_a_build_is_told_in_its_own_words(tmp_path):
    """With a stamp (`make pdf`), the terminal gets the error's own line and
    where the traceback is; the log holds the cell and its traceback."""
    path = write(tmp_path / "bad.ipynb", new_code_cell("y = 1"), new_code_cell(
        "raise ValueError('TIMING_ROUNDS must be >= 1, got 0')"))
    stamp = tmp_path / "build" / "bad.executed"
    run = subprocess.run(RUN_NOTEBOOK + [str(path), "--stamp", str(stamp)],
                         capture_output=True, text=True, timeout=120)
    log = tmp_path / "build" / "bad.run.log"
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr == (f"{path}: a cell failed: ValueError: TIMING_ROUNDS "
                          f"must be >= 1, got 0\n(the cell and its traceback: "
                          f"{log}); the file is unchanged.\n")
    assert "raise ValueError" in log.read_text() and not stamp.exists()
