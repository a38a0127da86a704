"""The layout rules that `make pdf` enforces (tools/layout.py)."""
import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

import hand_in
import layout
from project import (HIDE_INPUT_TAG, MAX_CODE_LINE, MAX_OUTPUT_LINE, NOTEBOOK,
                     SUBMISSION, TEXT_WIDTH_NAME)


def as_dict(*cells):
    return json.loads(nbformat.writes(new_notebook(cells=list(cells))))


def printing(text):
    cell = new_code_cell("print(text)")
    cell.outputs = [new_output("stream", name="stdout", text=text + "\n")]
    return cell


@pytest.mark.parametrize("cell, rule", [
    (new_code_cell("x = " + "1" * MAX_CODE_LINE), "a code line of"),
    (printing("y" * (MAX_OUTPUT_LINE + 1)), "a printed line of"),
    (new_markdown_cell("Gr\u00fc\u00dfe"), "non-ASCII text"),
    (printing("\u2264 1"), "non-ASCII output"),
    (new_code_cell("x = 1", metadata={"tags": [HIDE_INPUT_TAG]}),
     "expanded in Jupyter"),
])
def test_each_rule_names_the_cell(cell, rule):
    (problem,) = layout.problems(as_dict(new_markdown_cell("# t"), cell))
    assert problem.startswith(f"cell 1 ({cell.cell_type})") and rule in problem


def test_a_notebook_within_the_rules_passes():
    hidden = new_code_cell("x = 1", metadata={
        "tags": [HIDE_INPUT_TAG], "jupyter": {"source_hidden": True}})
    cells = (new_code_cell("x = " + "1" * (MAX_CODE_LINE - 4)),
             printing("y" * MAX_OUTPUT_LINE), hidden)
    assert layout.problems(as_dict(*cells)) == []


def test_make_pdf_refuses_a_hand_in_that_breaks_a_rule(tmp_path):
    """The build stops before submission/ changes, naming cell and rule."""
    cells = [new_markdown_cell("# Title"),
             new_code_cell("x = " + "1" * MAX_CODE_LINE),
             new_code_cell(f"{TEXT_WIDTH_NAME} = 6.5")]
    for count, cell in enumerate(cells[1:], 1):
        cell.execution_count = count
    nbformat.write(new_notebook(cells=cells), tmp_path / NOTEBOOK)
    with pytest.raises(hand_in.Failed, match=r"layout rules .*\n  cell 1 "
                       r"\(code\): a code line of"):
        hand_in.build(tmp_path / NOTEBOOK, None, [])
    assert not (tmp_path / SUBMISSION).exists()
