"""Register this folder's .venv as a Jupyter kernel of the user, one per folder.

    .venv/bin/python tools/kernel.py      prints the kernel's display name

Jupyter keeps a user's kernels in one place (~/.local/share/jupyter/kernels),
so one name for every clone would run the .venv of whichever clone was set
up last. Here each folder gets its own kernel: named after the folder's path
(KERNEL_NAME-<8 hex digits>) and shown as "Python (ECE 685D HW2, <folder>)",
so the kernel a user picks runs the .venv of the folder it names. The
project's kernels whose Python is gone (a folder moved or deleted) are
removed, and so is the one name older setups gave every clone
(KERNEL_NAME), where it points here.
"""
import json
import shutil
import sys
import tempfile
from pathlib import Path

from project import KERNEL_DISPLAY_NAME, KERNEL_NAME, ROOT, sha256


def kernel_name(folder):
    return f"{KERNEL_NAME}-{sha256(str(folder).encode())[:8]}"


def display_name(folder):
    home = Path.home()
    shown = f"~/{folder.relative_to(home)}" if folder.is_relative_to(home) else str(folder)
    return KERNEL_DISPLAY_NAME.format(folder=shown)


def register(folder=ROOT, python=sys.executable, manager=None):
    """Install the kernel of folder (run by python) for this user, and
    remove the project's stale ones; the kernel's name."""
    from ipykernel.kernelspec import make_ipkernel_cmd, write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager
    manager = manager or KernelSpecManager()
    name = kernel_name(folder)
    with tempfile.TemporaryDirectory() as tmp:
        spec = write_kernel_spec(Path(tmp) / name, overrides={
            "argv": make_ipkernel_cmd(executable=str(python),
                                      python_arguments=["-Xfrozen_modules=off"]),
            "display_name": display_name(folder)})
        manager.install_kernel_spec(spec, name, user=True)
    for stale in project_kernels(manager):
        argv = json.loads((stale / "kernel.json").read_text())["argv"]
        if not Path(argv[0]).exists() or (stale.name == KERNEL_NAME
                                          and argv[0] == str(python)):
            shutil.rmtree(stale)
    return name


def project_kernels(manager):
    """The project's kernel folders among the user's kernels."""
    folder = Path(manager.user_kernel_dir)
    return sorted(path for path in folder.glob(f"{KERNEL_NAME}*")
                  if (path / "kernel.json").is_file())


if __name__ == "__main__":
    register()
    print(display_name(ROOT))
