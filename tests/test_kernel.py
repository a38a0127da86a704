"""The Jupyter kernel setup registers (tools/kernel.py): one per project
folder, so with two clones the kernel a user picks runs the .venv of the
folder it names."""
import json
import sys
from pathlib import Path

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import start_new_kernel

from kernel import display_name, register
from project import KERNEL_DISPLAY_NAME, KERNEL_NAME


def printed(kernel_client, code):
    """What code prints in the kernel."""
    out = []
    kernel_client.execute_interactive(
        code, timeout=60, output_hook=lambda msg: out.append(msg["content"].get("text", "")))
    return "".join(out)


def ours(manager):
    """The project's kernels Jupyter finds, by name."""
    return sorted(n for n in manager.find_kernel_specs() if n.startswith(KERNEL_NAME))


def test_two_clones_each_pick_their_own_venv(tmp_path, root, monkeypatch):
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter"))  # the user's
    manager = KernelSpecManager()
    clone = tmp_path / "another-clone"
    python = clone / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("")
    # As setups before gave every clone: one name, for whichever came last
    legacy = Path(manager.user_kernel_dir) / KERNEL_NAME
    legacy.mkdir(parents=True)
    (legacy / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python (ECE 685D HW2)", "language": "python"}))

    names = [register(clone, python, manager), register(root, sys.executable, manager)]
    specs = {name: manager.get_kernel_spec(name) for name in ours(manager)}
    assert sorted(specs) == sorted(names)  # the shared name is gone
    assert [specs[name].argv[0] for name in names] == [str(python), sys.executable]
    shown = [specs[name].display_name for name in names]
    assert shown[0] == KERNEL_DISPLAY_NAME.format(folder=clone)  # /tmp: not under ~
    assert shown[1] == display_name(root) and shown[0] != shown[1]

    # Picking this folder's kernel runs this folder's .venv
    km, kc = start_new_kernel(kernel_name=names[1],
                              startup_timeout=120)
    try:
        assert printed(kc, "import sys; print(sys.prefix)") == f"{root / '.venv'}\n"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)

    python.unlink()  # the other clone deleted: its kernel goes at the next setup
    register(root, sys.executable, manager)
    assert ours(manager) == [names[1]]
