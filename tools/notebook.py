"""Execute a notebook in place (tools/run_notebook.py is the command) and
load its tagged code cells as a module.

Cells tagged ``export`` hold the solution's definitions (nbdev style); tests and
benchmarks import them with ``load_definitions`` so they exercise the notebook's
own code, never a copy.
"""
import asyncio
import contextlib
import logging
import os
import signal
import stat
import sys
import tempfile
import types
from pathlib import Path

import nbformat
from jupyter_client import AsyncKernelManager
from jupyter_client.kernelspec import KernelSpec
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError
from traitlets import default

EXPORT_TAG = "export"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# The kernel the stored notebook names, whichever one it was run with
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)",
              "language": "python"}
# nbclient logs the errors it raises; the build reports them once.
LOG = logging.getLogger("hw2.nbclient")
LOG.addFilter(lambda record: record.levelno < logging.ERROR)


def cell_tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def code_cells(nb, tag=None):
    return [c for c in nb.cells if c.cell_type == "code"
            and (tag is None or tag in cell_tags(c))]


def load_definitions(path="hw2.ipynb", name="hw2"):
    """Run the notebook's ``export`` cells in a fresh module and return it."""
    nb = nbformat.read(path, as_version=4)
    module = types.ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module  # lets pickle and dataclasses find the classes
    for index, cell in enumerate(code_cells(nb, EXPORT_TAG)):
        code = compile(cell.source, f"<{Path(path).name} export cell {index}>", "exec")
        exec(code, module.__dict__)
    return module


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
    """A NotebookClient that remembers the code cell it is running and, on
    SIGINT or SIGTERM, kills the kernel: execution then ends as it does when
    the kernel dies, and nbclient cleans up."""

    running = None  # (execution count, cell) of the code cell being run
    stopped_by = None  # the signal that stopped execution

    async def async_start_new_kernel(self, **kwargs):
        loop = asyncio.get_running_loop()
        with contextlib.suppress(RuntimeError):  # not the main thread
            for signum in STOP_SIGNALS:
                loop.add_signal_handler(signum, self.stop, signum)
        await super().async_start_new_kernel(**kwargs)
        if self.stopped_by:  # it came while the kernel started
            await self.km.signal_kernel(signal.SIGKILL)

    async def async_execute_cell(self, cell, cell_index, **kwargs):
        if cell.cell_type == "code":
            self.running = (kwargs.get("execution_count"), cell)
        return await super().async_execute_cell(cell, cell_index, **kwargs)

    def stop(self, signum):
        if self.stopped_by is None:
            self.stopped_by = signum
            if self.km is not None and self.km.has_kernel:
                asyncio.ensure_future(self.km.signal_kernel(signal.SIGKILL))

    def stop_message(self):
        """What stopped execution, and in which cell."""
        what = (f"stopped by {signal.Signals(self.stopped_by).name}"
                if self.stopped_by else "the kernel died")
        if self.running is None:
            return f"{what} while starting the kernel"
        count, cell = self.running
        line = next((s for s in cell.source.splitlines() if s.strip()), "")
        return f"{what} in cell [{count}] ({line.strip()[:50]})"


def run_cells(client, path):
    """client.execute(); a signal or a dead kernel raises Stopped."""
    died = False
    try:
        client.execute()
    except DeadKernelError:
        died = True
    except Exception:
        if client.stopped_by is None:
            raise
    if died or client.stopped_by:
        code = 128 + client.stopped_by if client.stopped_by else 1
        raise Stopped(f"{path}: {client.stop_message()}; "
                      "the file is unchanged.", code)


def execute(path, workdir=None, timeout=900):
    """Execute a notebook top to bottom in a fresh python3 kernel, in place.

    Counts come out 1, 2, 3, ...; no timing metadata is recorded, so two runs
    differ only where the outputs themselves differ. A failing cell raises
    nbclient's CellExecutionError, which shows that cell and its traceback;
    a signal, a dead kernel or a failed save raises Stopped. The file is
    rewritten only after a complete run.
    """
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    client = Client(
        nb, timeout=timeout, kernel_name="python3", record_timing=False,
        kernel_manager_class=ThisPythonKernelManager, log=LOG,
        resources={"metadata": {"path": str(workdir or path.parent)}})
    run_cells(client, path)
    merge_streams(nb)
    nb.metadata.pop("widgets", None)
    nb.metadata.kernelspec = KERNELSPEC
    nbformat.validate(nb)
    try:
        save(nb, path)
    except OSError as error:
        raise Stopped(f"{path}: not saved ({error.strerror}); "
                      "the file is unchanged.") from None
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


def save(nb, path):
    """Write a notebook as nbformat.write does, but atomically."""
    text = nbformat.writes(nb)
    write_atomic(path, text if text.endswith("\n") else text + "\n")


def write_atomic(path, text):
    """Replace the file at path by one holding text, all or nothing: a full
    disk, a crash or a signal leaves the old file and no temporary one."""
    path = Path(os.path.realpath(path))
    mode = file_mode(path)
    with signals_held():
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise


def file_mode(path):
    """The permission bits of path, or those a new file gets."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@contextlib.contextmanager
def signals_held():
    """Hold SIGINT and SIGTERM back (until the block ends)."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
