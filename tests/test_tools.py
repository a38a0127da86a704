"""tools/notebook.py: how the build executes and loads notebooks."""
import nbformat
import pytest
from nbclient.exceptions import CellExecutionError
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from notebook import execute, load_definitions


def write(path, *cells):
    nb = new_notebook(cells=list(cells))
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python",
                                 "display_name": "Python 3"}
    nbformat.write(nb, path)
    return path


def test_execute_in_place_numbers_cells_in_order(tmp_path):
    path = write(tmp_path / "ok.ipynb", new_markdown_cell("# t"),
                 new_code_cell("x = 2"), new_code_cell("print(x * 21)"))
    execute(path)
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == [1, 2]
    assert code[1].outputs[0].text == "42\n"
    assert all("execution" not in c.metadata for c in code)  # no timestamps


def test_failing_cell_fails_with_that_cells_error(tmp_path):
    path = write(tmp_path / "bad.ipynb", new_code_cell("y = 1"),
                 new_code_cell("raise ValueError('cell two broke')"))
    with pytest.raises(CellExecutionError) as error:
        execute(path)
    assert "raise ValueError('cell two broke')" in str(error.value)
    assert "cell two broke" in str(error.value)


def test_load_definitions_runs_only_export_cells(tmp_path):
    exported = new_code_cell("def f():\n    return 7")
    exported.metadata["tags"] = ["export"]
    path = write(tmp_path / "defs.ipynb", exported,
                 new_code_cell("raise RuntimeError('not exported')"))
    module = load_definitions(path, name="defs_under_test")
    assert module.f() == 7
