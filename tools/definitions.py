"""Load a notebook's `export` cells as a module, for tests and benchmarks.

Cells tagged `export` hold the solution's definitions (nbdev style); tests
import them with ``load_definitions`` so they exercise the notebook's own
code, never a copy. The cells run in the notebook's folder, so what they
create (figures/) lands there, wherever pytest was started.
"""
import contextlib
import sys
import types
from pathlib import Path

import nbformat

from project import EXPORT_TAG, code_cells


def load_definitions(path, name="hw2"):
    """Run the notebook's ``export`` cells in a fresh module and return it."""
    path = Path(path).resolve()
    nb = nbformat.read(path, as_version=4)
    module = types.ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module  # lets pickle and dataclasses find the classes
    with contextlib.chdir(path.parent):
        for index, cell in enumerate(code_cells(nb, EXPORT_TAG)):
            code = compile(cell.source, f"<{path.name} export cell {index}>", "exec")
            exec(code, module.__dict__)
    return module
