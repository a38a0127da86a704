"""Stopping a build and cleaning up: `make pdf` stopped by SIGTERM or Ctrl-C
stops as a whole and says what submission/ holds; `make clean` and a second
build wait for a running one (build/.lock, tools/lock.py)."""
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

import hand_in
from project import NOTEBOOK, PDF, SUBMISSION

TOOLS = Path(__file__).resolve().parents[1] / "tools"
LOCK_CLI = [sys.executable, str(TOOLS / "lock.py")]
STOP_SECONDS = 15  # "within seconds", with room for a loaded machine
SLOW_CELL = """import os, pathlib, time
pathlib.Path('kernel.pid').write_text(str(os.getpid()))
time.sleep(120)"""


def make_env():
    return {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}


@pytest.fixture
def folder(tmp_path, root):
    """A project folder whose notebook runs one slow cell: the project's
    Makefile and tools/ (linked), its .venv (passed as VENV), and a
    previous hand-in in submission/."""
    for name in ("Makefile", "tools", "requirements.txt"):
        (tmp_path / name).symlink_to(root / name)
    (tmp_path / "data").mkdir()
    (tmp_path / "figures").mkdir()
    nb = new_notebook(cells=[new_code_cell("x = 1"), new_code_cell(SLOW_CELL)])
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python",
                                 "display_name": "Python 3"}
    nbformat.write(nb, tmp_path / NOTEBOOK)
    (tmp_path / SUBMISSION).mkdir()
    shutil.copy2(tmp_path / NOTEBOOK, tmp_path / SUBMISSION / NOTEBOOK)
    (tmp_path / SUBMISSION / PDF).write_bytes(b"%PDF-1.4 a previous hand-in")
    return tmp_path


def snapshot(folder):
    """The notebook and submission/, bytes and modification times."""
    files = [folder / NOTEBOOK, *sorted((folder / SUBMISSION).iterdir())]
    return {f.name: (f.read_bytes(), f.stat().st_mtime_ns) for f in files}


def make_pdf(folder, root, **variables):
    args = [f"{k}={v}" for k, v in variables.items()]
    return subprocess.Popen(
        ["make", "-s", "-C", str(folder), "pdf", f"PYTHON={sys.executable}",
         f"VENV={root / '.venv'}", *args], env=make_env(), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def wait_for(path, build, timeout=120):
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text()):
        assert build.poll() is None, build.communicate()
        assert time.monotonic() < deadline, f"no {path.name}"
        time.sleep(0.1)
    return int(path.read_text())


def processes_in(folder):
    """Processes working in folder (the build's make, tools and kernel)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and Path(os.readlink(proc / "cwd")) == folder:
                found.append(int(proc.name))
        except OSError:
            pass
    return found


def test_sigterm_to_make_alone_stops_the_whole_build(folder, root):
    """`kill <pid of make>` (an editor's stop button) during the run: the
    build stops within seconds, kernel included; the notebook and
    submission/ stay as they were, and what it says is true."""
    before = snapshot(folder)
    build = make_pdf(folder, root)
    kernel = wait_for(folder / "kernel.pid", build)
    os.kill(build.pid, signal.SIGTERM)
    sent = time.monotonic()
    _, stderr = build.communicate(timeout=120)
    took = time.monotonic() - sent
    assert build.returncode == -signal.SIGTERM  # make dies by it, as it should
    assert took < STOP_SECONDS, f"the build ran on for {took:.0f} s"
    assert processes_in(folder) == []
    with pytest.raises(ProcessLookupError):
        os.kill(kernel, 0)
    assert snapshot(folder) == before
    ours = [line for line in stderr.splitlines() if not line.startswith("make")]
    status = hand_in.status(folder / NOTEBOOK)
    assert status.startswith(f"{SUBMISSION}/ still holds the previous build")
    assert ours == [f"{NOTEBOOK}: stopped by SIGTERM in cell [2] (import os, "
                    "pathlib, time); the file is unchanged.", status]


def test_ctrl_c_during_the_build_says_what_submission_holds(folder, root):
    """Ctrl-C (SIGINT to the process group of make, as a terminal sends
    it) while the locked build runs: `make pdf` says what submission/
    holds, once."""
    started = folder / "started"
    # In place of `make hand-in` under the lock: one that Ctrl-C stops
    build = make_pdf(folder, root, HAND_IN=f"sh -c 'touch {started}; exec sleep 60'")
    deadline = time.monotonic() + 30
    while not started.exists():
        assert time.monotonic() < deadline and build.poll() is None, build.communicate()
        time.sleep(0.05)
    os.killpg(build.pid, signal.SIGINT)
    _, stderr = build.communicate(timeout=30)
    assert build.returncode != 0
    status = hand_in.status(folder / NOTEBOOK)
    assert status.startswith(f"{SUBMISSION}/ still holds the previous build")
    assert [line for line in stderr.splitlines() if not line.startswith("make")] == [status]
    assert processes_in(folder) == []


def test_a_hand_in_made_by_the_stopped_build_is_called_so(folder):
    """Stopped after submission/ was replaced: not "the previous build"."""
    started = time.time()
    (folder / SUBMISSION / NOTEBOOK).write_bytes((folder / NOTEBOOK).read_bytes())
    assert hand_in.status(folder / NOTEBOOK, started).startswith(
        f"{SUBMISSION}/ holds the hand-in this build made")
    assert hand_in.status(folder / NOTEBOOK, started + 60).startswith(
        f"{SUBMISSION}/ still holds the previous build")


def hold(lockfile):
    """The lock a running build holds, taken by this process."""
    lockfile.parent.mkdir(exist_ok=True)
    held = open(lockfile, "w")
    fcntl.flock(held, fcntl.LOCK_EX)
    return held


def test_make_clean_waits_for_a_running_build(folder):
    """`make clean` during a build: it says so and waits; build/.lock is
    never removed, so a build started meanwhile waits too."""
    build_dir = folder / "build"
    running = hold(build_dir / ".lock")
    (build_dir / "hw2.executed").write_text("stamp of the running build\n")
    clean = subprocess.Popen(["make", "-s", "-C", str(folder), "clean",
                              f"PYTHON={sys.executable}"], env=make_env(),
                             text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with pytest.raises(subprocess.TimeoutExpired):
        clean.wait(timeout=2)
    assert sorted(p.name for p in build_dir.iterdir()) == [".lock", "hw2.executed"]
    assert (folder / SUBMISSION).exists()
    running.close()
    _, stderr = clean.communicate(timeout=60)
    assert clean.returncode == 0
    assert "another build is running in this folder" in stderr
    assert [p.name for p in build_dir.iterdir()] == [".lock"]
    assert not (folder / SUBMISSION).exists()


def test_a_lock_removed_while_waiting_is_taken_anew(tmp_path):
    """A build waits for the lock; the folder holding it is removed and
    another build locks a new file there: the waiting build waits for
    that one, instead of running beside it."""
    lockfile = tmp_path / "build" / ".lock"
    first = hold(lockfile)
    ran = tmp_path / "ran"
    waiting = subprocess.Popen(LOCK_CLI + [str(lockfile), "touch", str(ran)],
                               text=True, stderr=subprocess.PIPE)
    with pytest.raises(subprocess.TimeoutExpired):
        waiting.wait(timeout=1)
    shutil.rmtree(tmp_path / "build")
    third = hold(lockfile)
    first.close()
    with pytest.raises(subprocess.TimeoutExpired):
        waiting.wait(timeout=2)
    assert not ran.exists()
    third.close()
    waiting.communicate(timeout=30)
    assert waiting.returncode == 0 and ran.exists()


@pytest.mark.parametrize("code, signum", [(3, None), (0, signal.SIGTERM)])
def test_the_lock_exits_as_its_command_did(tmp_path, code, signum):
    """Its exit status is the command's; a command killed by a signal makes
    it die by that signal (make and shells see an interrupted build)."""
    command = (f"exit {code}" if signum is None
               else f"kill -{signal.Signals(signum).name[3:]} $$")
    run = subprocess.run(LOCK_CLI + [str(tmp_path / ".lock"), "--on-failure",
                                     "echo failed", "sh", "-c", command],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == (-signum if signum else code)
    assert run.stdout == "failed\n"
