"""The export settings that .venv's Jupyter uses (tools/jupyter_config.py).

`jupyter nbconvert --to pdf` from .venv, as `make pdf` runs it, on a small
notebook: unnumbered headings, no title block, no "In [1]:" prompts, cells
tagged `hide-input` show their output only, cells tagged `remove-cell`
nothing, and consecutive prints in one block (as JupyterLab stores them).
"""
import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

import jupyter_config
from project import HIDE_INPUT_TAG, REMOVE_CELL_TAG, TEMPLATE, TEXT_WIDTH_NAME, pdf_text

JUPYTER = Path(sys.executable).with_name("jupyter")


def printing(text, tags=()):
    """A code cell that prints text, already executed; its source never contains text."""
    half = len(text) // 2
    return new_code_cell(f"print({text[:half]!r} + {text[half:]!r})",
                         metadata={"tags": list(tags)}, execution_count=1,
                         outputs=[new_output("stream", name="stdout", text=text + "\n")])


def export(folder, to):
    subprocess.run([JUPYTER, "nbconvert", "--to", to, "title_probe.ipynb",
                    "--log-level", "ERROR"], cwd=folder, check=True)


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    """A folder with title_probe.ipynb."""
    folder = tmp_path_factory.mktemp("export")
    split = printing("partone")
    split.outputs.append(new_output("stream", name="stdout", text="parttwo\n"))
    nb = new_notebook(cells=[
        new_markdown_cell("# Probe title\n\nSome text."),
        new_markdown_cell("## First heading"),
        printing("shownoutput"),
        new_markdown_cell("### Second heading"),
        printing("hiddenoutput", [HIDE_INPUT_TAG]),
        printing("removedoutput", [REMOVE_CELL_TAG]),
        split,
        new_code_cell(f"{TEXT_WIDTH_NAME} = 6.5", metadata={"tags": [HIDE_INPUT_TAG]}),
    ])
    nbformat.write(nb, folder / "title_probe.ipynb")
    return folder


@pytest.fixture(scope="module")
def probe_text(probe):
    export(probe, "pdf")
    return pdf_text(probe / "title_probe.pdf")


@pytest.mark.parametrize("app", ["nbconvert", "server"])
def test_installed_config_is_this_projects(app):
    """Both configs .venv's Jupyter reads hold today's settings, with this
    folder's template (not one from before a move or an older setup)."""
    path = jupyter_config.config_dir() / f"jupyter_{app}_config.json"
    installed = json.loads(path.read_text())
    assert installed == json.loads(json.dumps(jupyter_config.SETTINGS))
    assert Path(installed["LatexExporter"]["template_file"]) == TEMPLATE


def test_headings_unnumbered_and_no_title_block(probe_text):
    pdf_text = probe_text
    assert pdf_text.lstrip().startswith("Probe title")
    for heading in ("Probe title", "First heading", "Second heading"):
        assert heading in pdf_text
        assert not re.search(rf"^\s*\d+(\.\d+)*\s+{heading}", pdf_text, re.M), heading
    assert "title_probe" not in pdf_text.replace("\\", "")  # the default title
    months = "January|February|March|April|May|June|July|August|September|" \
             "October|November|December"
    assert not re.search(rf"({months}) \d{{1,2}}, \d{{4}}", pdf_text)  # its date


def test_tagged_cells_show_output_only(probe_text):
    assert "print('shown'" in probe_text and "shownoutput" in probe_text
    assert "print('hidden" not in probe_text and "hiddenoutput" in probe_text
    assert "removed" not in probe_text


def test_no_execution_prompts(probe_text):
    assert "print('shown'" in probe_text
    assert not re.search(r"(In|Out)\s*\[\d*\]:", probe_text)


def test_consecutive_prints_in_one_block(probe):
    """LaTeX from nbconvert with the same config, in this process (faster)."""
    from nbconvert import LatexExporter
    from nbconvert.nbconvertapp import NbConvertApp
    app = NbConvertApp()
    app.load_config_file()
    tex, _ = LatexExporter(config=app.config).from_filename(str(probe / "title_probe.ipynb"))
    assert re.search(r"partone\n\s*parttwo", tex)


def latex_of(cells):
    from nbconvert import LatexExporter
    from nbconvert.nbconvertapp import NbConvertApp
    app = NbConvertApp()
    app.load_config_file()
    return LatexExporter(config=app.config).from_notebook_node(
        new_notebook(cells=cells))[0]


def test_text_width_comes_from_the_notebook():
    """The notebook names the text width once; the template reads it, and a
    notebook without it fails loudly instead of getting some default."""
    tex = latex_of([new_code_cell(f"x = 1\n{TEXT_WIDTH_NAME} = 5.5  # inches")])
    assert re.search(r"\\geometry\{[^}]*textwidth=5\.5in", tex)
    assert "\\errmessage" in latex_of([new_code_cell("x = 1")])
