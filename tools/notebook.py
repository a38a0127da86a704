"""Execute a notebook in place in a fresh kernel of this Python
(tools/run_notebook.py is the command).

The file is replaced only after a complete run, and only if it still holds
what the run read: a version saved meanwhile is kept and the executed copy
goes aside.
"""
import asyncio
import contextlib
import logging
import os
import signal
import sys
import tempfile
import warnings
from pathlib import Path

import nbformat
from jupyter_client import AsyncKernelManager
from jupyter_client.kernelspec import KernelSpec
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError
from nbformat.validator import MissingIDFieldWarning
from traitlets import default

from files import STOP_SIGNALS, write_atomic
from project import check_loopback, code_cells, read_notebook

# The kernel the stored notebook names, whichever one it was run with
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)",
              "language": "python"}
# Builds Matplotlib's font cache (if missing) in the kernel's environment,
# before any cell runs: built by the kernel, it takes seconds and Matplotlib
# logs "building the font cache" into the cell's outputs.
WARM_UP = (sys.executable, "-c", "import matplotlib.font_manager")
# nbclient logs the errors it raises; the build reports them once.
LOG = logging.getLogger("hw2.nbclient")
LOG.addFilter(lambda record: record.levelno < logging.ERROR)


class Stopped(Exception):
    """Execution ended early or the save failed; the notebook is unchanged."""

    def __init__(self, message, exit_code=1):
        super().__init__(message)
        self.exit_code = exit_code


class ThisPythonKernelManager(AsyncKernelManager):
    """Kernel "python3" run by this interpreter (the project's .venv),
    whatever kernelspecs the user or JUPYTER_PATH define. Its sockets are
    encrypted (CurveZMQ); unencrypted, ipykernel warns at every start."""

    @default("transport_encryption")
    def _encrypted(self):
        return "auto"

    @property
    def kernel_spec(self):
        return KernelSpec(
            name="python3", language="python", display_name="Python 3",
            argv=[sys.executable, "-m", "ipykernel_launcher",
                  "-f", "{connection_file}"],
            metadata={"supported_encryption": ["curve"]})


class Client(NotebookClient):
    """A NotebookClient that builds Matplotlib's font cache while the kernel
    starts, remembers the code cell it is running and, on SIGINT or SIGTERM,
    kills the kernel: execution then ends as it does when the kernel dies,
    and nbclient cleans up."""

    running = None  # (execution count, cell) of the code cell being run
    warming = None  # the process that builds Matplotlib's font cache
    stopped_by = None  # the signal that stopped execution

    async def async_start_new_kernel(self, **kwargs):
        loop = asyncio.get_running_loop()
        with contextlib.suppress(RuntimeError):  # not the main thread
            for signum in STOP_SIGNALS:
                loop.add_signal_handler(signum, self.stop, signum)
        self.warming = await asyncio.create_subprocess_exec(
            *WARM_UP, env=kwargs.get("env"), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        try:  # the kernel starts meanwhile
            await super().async_start_new_kernel(**kwargs)
        finally:  # no cell runs before the cache is built
            await self.warming.wait()
        if self.stopped_by:  # it came while the kernel started
            await self.km.signal_kernel(signal.SIGKILL)

    async def async_execute_cell(self, cell, cell_index, **kwargs):
        if cell.cell_type == "code":
            self.running = (kwargs.get("execution_count"), cell)
        return await super().async_execute_cell(cell, cell_index, **kwargs)

    def stop(self, signum):
        if self.stopped_by is None:
            self.stopped_by = signum
            if self.warming is not None and self.warming.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    self.warming.kill()
            if self.km is not None and self.km.has_kernel:
                asyncio.ensure_future(self.km.signal_kernel(signal.SIGKILL))

    def stop_message(self):
        """What stopped execution, and in which cell."""
        what = (f"stopped by {signal.Signals(self.stopped_by).name}"
                if self.stopped_by else "the kernel died")
        if self.running is None:
            return f"{what} while starting the kernel"
        count, cell = self.running
        return f"{what} in cell [{count}] ({first_line(cell)})"


def run_cells(client, path, env, stop_on_signals):
    """client.execute(env=env); a dead or unreachable kernel raises Stopped,
    and so does a signal if stop_on_signals (the build's command); else
    SIGINT raises KeyboardInterrupt and SIGTERM SystemExit, as they would
    without the kernel (under pytest, Ctrl-C stops the suite)."""
    died = False
    try:
        client.execute(env=env)
    except DeadKernelError:
        died = True
    except RuntimeError as error:
        if client.stopped_by is None and "didn't respond" in str(error):
            raise Stopped(f"{path}: the kernel could not be reached ({error}); "
                          "the file is unchanged.") from None
        if client.stopped_by is None:
            raise
    except Exception:
        if client.stopped_by is None:
            raise
    if client.stopped_by and not stop_on_signals:
        if client.stopped_by == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + client.stopped_by)
    if died or client.stopped_by:
        code = 128 + client.stopped_by if client.stopped_by else 1
        raise Stopped(f"{path}: {client.stop_message()}; "
                      "the file is unchanged.", code)


def kernel_env(scratch):
    """The kernel's environment: Matplotlib's and IPython's config dirs under
    scratch where their defaults are not writable (else they warn into the
    outputs and Matplotlib rebuilds its font cache at every run)."""
    env = dict(os.environ)
    home = Path(os.path.expanduser("~"))
    home_ok = home.is_dir() and os.access(home, os.W_OK)
    usable = {"MPLCONFIGDIR": home_ok and all(map(can_write, matplotlib_dirs(home))),
              "IPYTHONDIR": home_ok}
    for name, sub in (("MPLCONFIGDIR", "mplconfig"), ("IPYTHONDIR", "ipython")):
        if name not in env and not usable[name]:
            (Path(scratch) / sub).mkdir(parents=True, exist_ok=True)
            env[name] = str(Path(scratch, sub).resolve())
    return env


def matplotlib_dirs(home):
    """Matplotlib's default config and cache dirs (see its get_configdir
    and get_cachedir), when MPLCONFIGDIR is not set."""
    if not sys.platform.startswith(("linux", "freebsd")):
        return [home / ".matplotlib"]
    return [Path(os.environ.get(xdg) or home / default, "matplotlib")
            for xdg, default in (("XDG_CONFIG_HOME", ".config"),
                                 ("XDG_CACHE_HOME", ".cache"))]


def can_write(path):
    """path is a writable folder, or could be made as one."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path.is_dir() and os.access(path, os.W_OK)


def check_no_stderr(nb, path):
    """Stopped if a cell's stored output is text on stderr: the notebook
    prints nothing there, so it is a warning (Matplotlib's, a library's)
    that the PDF would show."""
    for cell in code_cells(nb):
        for output in cell.outputs:
            if output.output_type == "stream" and output.name == "stderr":
                text = " ".join(output.text.split())[:200]
                raise Stopped(
                    f"{path}: cell [{cell.execution_count}] ({first_line(cell)}) "
                    f"wrote to stderr: {text}\nThe PDF would show it, so the file "
                    "is unchanged: make that cell print nothing to stderr (fix or "
                    "silence the warning), then run the build again.")


def first_line(cell):
    return next((s.strip() for s in cell.source.splitlines() if s.strip()), "")[:50]


def execute(path, workdir=None, timeout=900, aside=None, stop_on_signals=False,
            scratch=None):
    """Execute a notebook top to bottom in a fresh python3 kernel, in place.

    Counts come out 1, 2, 3, ...; no timing metadata is recorded, so two runs
    differ only where the outputs themselves differ. An invalid notebook
    raises NotANotebook and a machine without loopback network NoLoopback
    before anything runs; a failing cell raises
    nbclient's CellExecutionError, which shows that cell and its traceback;
    a signal, a dead kernel, text on stderr or a failed save raises
    Stopped. Matplotlib's font cache is built before the first cell. The file is
    rewritten only after a complete run and only if it still holds what the
    run read; otherwise the executed copy is saved in the folder `aside`
    (default: build/ next to the notebook) and Stopped says so.
    """
    path = Path(path)
    aside = Path(aside) if aside else path.parent / "build"
    read, _ = read_notebook(path)
    with warnings.catch_warnings():  # cells without ids (hand edits) get one
        warnings.simplefilter("ignore", MissingIDFieldWarning)
        nb = nbformat.reads(read.decode("utf-8"), as_version=4)
    check_loopback(path)
    client = Client(
        nb, timeout=timeout, kernel_name="python3", record_timing=False,
        kernel_manager_class=ThisPythonKernelManager, log=LOG,
        resources={"metadata": {"path": str(workdir or path.parent)}})
    scratch = scratch or Path(tempfile.gettempdir()) / f"hw2-kernel-{os.getuid()}"
    env = kernel_env(scratch)
    # The notebook's last cell checks its text in the file Jupyter names here
    env["JPY_SESSION_NAME"] = str(path.resolve())
    run_cells(client, path, env, stop_on_signals)
    merge_streams(nb)
    check_no_stderr(nb, path)
    nb.metadata.pop("widgets", None)
    nb.metadata.kernelspec = KERNELSPEC
    nbformat.validate(nb)
    try:
        saved = save_if_unchanged(nb, path, read)
        if not saved:
            aside.mkdir(parents=True, exist_ok=True)
            save(nb, aside / path.name)
    except OSError as error:
        raise Stopped(f"{path}: not saved ({error.strerror}); "
                      "the file is unchanged.") from None
    if saved:
        (aside / path.name).unlink(missing_ok=True)  # an older executed copy
    else:
        raise Stopped(f"{path} was saved while it ran: your version is kept, the "
                      f"executed copy is {aside / path.name}; run the build again.")
    return nb


def merge_streams(nb):
    """Join consecutive stream outputs of one name, as Jupyter's own UI
    does: how the kernel splits printed text into messages depends on
    timing, and split outputs add space in the PDF."""
    for cell in code_cells(nb):
        merged = []
        for output in cell.outputs:
            last = merged[-1] if merged else None
            if (last is not None and output.output_type == "stream"
                    and last.output_type == "stream"
                    and last.name == output.name):
                last.text += output.text
            else:
                merged.append(output)
        cell.outputs = merged


def serialize(nb):
    """The notebook's file text, as nbformat.write writes it."""
    text = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"


def save(nb, path):
    """Write a notebook as nbformat.write does, but atomically."""
    write_atomic(path, serialize(nb))


def save_if_unchanged(nb, path, read):
    """Save nb at path atomically if the file still holds the bytes `read`;
    False (nothing written) if someone saved another version meanwhile."""
    return write_atomic(path, serialize(nb), expect=read)
