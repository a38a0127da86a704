"""hw2.ipynb as stored: executed in order, readable in the PDF, deterministic."""
import ast
import json
import re
import shutil

import nbformat
import pytest

from notebook import execute
from project import EXPORT_TAG, HIDE_INPUT_TAG, NOTEBOOK, cell_tags, code_cells

MAX_CODE_LINE = 79  # longer lines wrap in the PDF
MAX_OUTPUT_LINE = 76  # printed output sits indented: it wraps sooner


@pytest.fixture(scope="module")
def nb(root):
    return nbformat.read(root / NOTEBOOK, as_version=4)


def test_executed_top_to_bottom(nb):
    counts = [cell.execution_count for cell in code_cells(nb)]
    assert counts == list(range(1, len(counts) + 1))
    errors = [o for c in code_cells(nb) for o in c.outputs
              if o.output_type == "error"]
    assert not errors


def headings(nb, level):
    marker = "#" * level + " "
    return [line[len(marker):] for c in nb.cells if c.cell_type == "markdown"
            for line in c.source.splitlines() if line.startswith(marker)]


def test_frame(nb):
    first = nb.cells[0].source
    assert first.startswith("# ECE 685D HW2") and "Zanwen Fu (zf93)" in first
    assert [h.split(":")[0] for h in headings(nb, 2)] == [
        "Use of large language models", "Setup", "Problem 1", "Problem 2",
        "Problem 3", "Appendix (optional)"]


def test_disclosure_names_the_model_and_real_checks(nb):
    """The LLM disclosure says what the model wrote, and every check it
    cites by section (*Section*) is a heading of this notebook."""
    disclosure = nb.cells[0].source.split("## Use of large language models")[1]
    assert "Claude" in disclosure and "Anthropic" in disclosure
    for work in ("code", "derivations", "text"):
        assert work in disclosure
    cited = re.findall(r"\*([^*]+)\*", disclosure)
    subsections = headings(nb, 3)
    assert cited and all(c in subsections for c in cited)


def test_definitions_are_tagged_for_export(nb):
    exported = "\n".join(c.source for c in code_cells(nb, EXPORT_TAG))
    for name in VISIBLE_SOLUTION:
        assert name in exported


VISIBLE_SOLUTION = ["def residual_mlp_grads", "def residual_mlp_forward",
                    "class MNISTTwoView", "def get_augment_pipeline",
                    "def show_two_view_batch", "def logistic_loss",
                    "def logistic_grad", "def logistic_hessian", "def update",
                    "def fit_logistic", "def damped_solve",
                    "def load_breast_cancer_split"]


def test_solution_code_is_visible(nb):
    """Hidden cells hold input checks, plotting, tabulating, asserts and
    prose; every solution function stays visible in the PDF."""
    hidden = "\n".join(c.source for c in code_cells(nb)
                       if HIDE_INPUT_TAG in cell_tags(c))
    for name in VISIBLE_SOLUTION:
        assert name not in hidden


def prose_calls(cell):
    return [node for node in ast.walk(ast.parse(cell.source))
            if isinstance(node, ast.Call)
            and getattr(node.func, "id", None) == "show_prose"]


def test_prose_has_fixed_words_and_asserted_claims(nb):
    """Prose with numbers is a literal template (the same words on every
    run), shown without its source, right after a hidden cell that asserts
    the claims it makes; its numbers never come from a timing."""
    cells = code_cells(nb)
    prose = [i for i, c in enumerate(cells) if prose_calls(c)]
    assert len(prose) >= 2
    for i in prose:
        (call,) = prose_calls(cells[i])
        assert isinstance(call.args[0], ast.Constant)
        assert HIDE_INPUT_TAG in cell_tags(cells[i])
        checks = cells[i - 1]
        assert HIDE_INPUT_TAG in cell_tags(checks)
        assert re.search(r"^assert ", checks.source, re.M)
        assert "totals" not in checks.source.split("facts = ")[-1]


def test_parameters_are_named_once_and_used(nb):
    """Each constant of the parameters cell is used by the code, and the
    calls take it from there: no lr=0.1, n_iters=300 ... typed again."""
    cells = code_cells(nb)
    params = cells[0]
    names = {t.id: node.value.value for node in ast.parse(params.source).body
             for t in node.targets}
    assert {"SEED", "LEARNING_RATE", "TEST_SIZE", "N_ITERS", "L2"} <= set(names)
    rest = [ast.parse(c.source) for c in cells[1:]]
    used = {n.id for tree in rest for n in ast.walk(tree)
            if isinstance(n, ast.Name)}
    assert set(names) <= used
    keywords = {"lr": "LEARNING_RATE", "n_iters": "N_ITERS",
                "test_size": "TEST_SIZE", "seed": "SEED", "l2": "L2",
                "batch_size": "BATCH_SIZE"}
    for tree in rest:
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg in keywords:
                value = node.value
                assert not (isinstance(value, ast.Constant)
                            and value.value == names[keywords[node.arg]]), \
                    f"{node.arg}={value.value} typed again"


def test_figures_are_vector_in_the_notebook(nb):
    """Every figure output carries a PDF (vector) version for the export."""
    figures = [o for c in code_cells(nb) for o in c.outputs
               if "image/png" in o.get("data", {})]
    assert figures
    assert all("application/pdf" in o["data"] for o in figures)


def test_code_lines_fit_the_pdf_page(nb):
    long = [(i, line) for i, c in enumerate(code_cells(nb))
            for line in c.source.splitlines() if len(line) > MAX_CODE_LINE]
    assert not long


def test_printed_lines_fit_the_pdf_page(nb):
    long = [line for c in code_cells(nb) for o in c.outputs
            for line in o.get("text", "").splitlines()
            if len(line) > MAX_OUTPUT_LINE]
    assert not long


def test_everything_is_ascii(nb):
    """Glyphs missing from the PDF font vanish silently: keep text ASCII."""
    texts = [c.source for c in nb.cells]
    for cell in code_cells(nb):
        for output in cell.outputs:
            texts.append(output.get("text", ""))
            texts.extend(v for k, v in output.get("data", {}).items()
                         if k.startswith("text/"))
    bad = [t for t in texts if not t.isascii()]
    assert not bad


def boxed(text):
    """Contents of every \\boxed{...}, white space folded."""
    found, start = [], 0
    while (start := text.find("\\boxed{", start)) != -1:
        depth, end = 1, start + len("\\boxed{")
        while depth:
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            end += 1
        found.append(" ".join(text[start + 7:end - 1].split()))
        start = end
    return found


def test_boxed_results_identical_in_notebook_and_tex(nb, root):
    markdown = "\n".join(c.source for c in nb.cells
                         if c.cell_type == "markdown")
    in_notebook = boxed(markdown)
    in_tex = boxed((root / "derivations.tex").read_text())
    assert len(in_notebook) == 12
    assert in_notebook == in_tex


# How the notebook prints a measured time: "median [min-max]"
TIMED = re.compile(r"\d+(\.\d+)? \[\d+(\.\d+)?-\d+(\.\d+)?\]")


def comparable_outputs(cell):
    """A cell's outputs with measured times masked; a cell that prints
    times also draws them, so its images are left out."""
    timed = any(TIMED.search(o.get("text", "")) for o in cell.outputs)
    result = []
    for output in cell.outputs:
        masked = TIMED.sub("#", output.get("text", ""))
        item = {"type": output.output_type,  # the padding follows the widths
                "text": re.sub(r" +", " ", masked)}
        for kind, value in output.get("data", {}).items():
            if not (timed and kind in ("image/png", "application/pdf")):
                item[kind] = value
        result.append(item)
    return result


def test_fresh_execution_reproduces_stored_outputs(nb, root, tmp_path):
    """Run the notebook in a fresh kernel in a scratch folder: every output
    equals the stored one, apart from measured times."""
    shutil.copy(root / NOTEBOOK, tmp_path / NOTEBOOK)
    (tmp_path / "data").symlink_to(root / "data")
    fresh = execute(tmp_path / NOTEBOOK)
    assert [c.source for c in fresh.cells] == [c.source for c in nb.cells]
    for stored, new in zip(code_cells(nb), code_cells(fresh)):
        assert comparable_outputs(new) == comparable_outputs(stored), \
            stored.source[:80]
    assert TIMED.search(json.dumps([c.outputs for c in code_cells(nb)]))
    figures = sorted(p.name for p in (tmp_path / "figures").iterdir())
    assert figures == sorted(p.name for p in (root / "figures").iterdir())
