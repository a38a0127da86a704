"""Execute hw2.ipynb in place and load its tagged code cells as a module.

    python tools/notebook.py execute hw2.ipynb

Cells tagged ``export`` hold the solution's definitions (nbdev style); tests and
benchmarks import them with ``load_definitions`` so they exercise the notebook's
own code, never a copy.
"""
import sys
import types
from pathlib import Path

import nbformat

EXPORT_TAG = "export"


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


def execute(path, workdir=None, timeout=900):
    """Execute a notebook top to bottom in a fresh python3 kernel, in place.

    Counts come out 1, 2, 3, ...; no timing metadata is recorded, so two runs
    differ only where the outputs themselves differ. A failing cell raises
    nbclient's CellExecutionError, which shows that cell and its traceback.
    """
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", record_timing=False,
        resources={"metadata": {"path": str(workdir or path.parent)}})
    client.execute()
    nb.metadata.pop("widgets", None)
    nbformat.validate(nb)
    nbformat.write(nb, path)
    return nb


def main(argv):
    if len(argv) != 2 or argv[0] != "execute":
        sys.exit("usage: python tools/notebook.py execute NOTEBOOK")
    execute(argv[1])


if __name__ == "__main__":
    main(sys.argv[1:])
