"""hw2.ipynb as stored: executed in order, written for the reader (prose in
markdown with its numbers checked, graded code shown, armour hidden and
collapsed), and deterministic."""
import ast
import builtins
from base64 import b64decode
import json
import re
import shutil

import nbformat
import pytest

import layout
from notebook import execute
from project import (EXPORT_TAG, HIDE_INPUT_TAG, NOTEBOOK, cell_tags,
                     code_cells)

COMMENT_WORDS = 110  # the Comment's length limit
VISIBLE_CHECK_CALLS = 8  # check_* calls the PDF may show


@pytest.fixture(scope="module")
def nb(root):
    return nbformat.read(root / NOTEBOOK, as_version=4)


def hidden(cell):
    return HIDE_INPUT_TAG in cell_tags(cell)


def test_executed_top_to_bottom(nb):
    counts = [cell.execution_count for cell in code_cells(nb)]
    assert counts == list(range(1, len(counts) + 1))
    errors = [o for c in code_cells(nb) for o in c.outputs
              if o.output_type == "error"]
    assert not errors


def test_no_stderr_in_the_hand_in(nb):
    """Warnings print as plain lines; nothing reaches stderr."""
    assert not [o for c in code_cells(nb) for o in c.outputs
                if o.get("name") == "stderr"]


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


def test_first_page_maps_each_problem_to_its_answer(nb):
    """Three lines before the disclosure: one per problem, naming where its
    answer is (sections that exist, figures the notebook draws)."""
    intro = nb.cells[0].source.split("## Use of large language models")[0]
    lines = [line for line in intro.splitlines() if line.startswith("- ")]
    assert [re.match(r"- \*\*(Problem \d):\*\*", line).group(1)
            for line in lines] == ["Problem 1", "Problem 2", "Problem 3"]
    sections = headings(nb, 2) + headings(nb, 3)
    for cited in re.findall(r"\*([^*]+)\*", intro.replace("**", "")):
        assert cited in sections
    code = "\n".join(c.source for c in code_cells(nb))
    for figure in re.findall(r"Figure \d", intro):
        assert f"{figure}." in code  # the figure's own title names it


def test_disclosure_names_the_model_and_real_checks(nb):
    """The LLM disclosure says what the model wrote, and every check it
    cites by section (*Section*) is a heading of this notebook."""
    disclosure = nb.cells[0].source.split("## Use of large language models")[1]
    assert "Claude" in disclosure and "Anthropic" in disclosure
    for work in ("code", "derivations", "text"):
        assert work in disclosure
    cited = re.findall(r"\*([^*]+)\*", disclosure)
    assert cited and all(c in headings(nb, 2) + headings(nb, 3) for c in cited)


# Everything that computes or draws a graded result is shown in the PDF
VISIBLE_SOLUTION = ["def residual_mlp_grads", "def residual_mlp_forward",
                    "class MNISTTwoView", "def get_augment_pipeline",
                    "def show_two_view_batch", "DataLoader(",
                    "def logistic_loss", "def logistic_grad",
                    "def logistic_hessian", "def update", "def fit_logistic",
                    "def damped_solve", "def accuracy", "def record",
                    "def time_updates", "def plot_comparison",
                    "def load_breast_cancer_split"]
# ... and the armour is not
HIDDEN_ARMOUR = ["def check_", "def fail", "def to_pil", "def load_mnist",
                 "def results_table", "def text_table", "def quote",
                 "def claim", "def separating_hyperplane",
                 "def sklearn_ridge_solution", "def autograd_grads",
                 "import "]


def test_graded_code_shown_and_armour_hidden(nb):
    shown = "\n".join(c.source for c in code_cells(nb) if not hidden(c))
    concealed = "\n".join(c.source for c in code_cells(nb) if hidden(c))
    for name in VISIBLE_SOLUTION:
        assert name in shown and name not in concealed, name
    for name in HIDDEN_ARMOUR:
        assert name in concealed and name not in shown, name


def check_calls(node):
    return [n for n in ast.walk(node) if isinstance(n, ast.Call)
            and getattr(n.func, "id", "").startswith("check_")]


def test_few_check_calls_in_the_pdf(nb):
    """At most one check line per visible function, few in all."""
    shown = [ast.parse(c.source) for c in code_cells(nb) if not hidden(c)]
    for tree in shown:
        for function in ast.walk(tree):
            if isinstance(function, ast.FunctionDef):
                assert len(check_calls(function)) <= 1, function.name
    assert 0 < sum(len(check_calls(tree)) for tree in shown) <= VISIBLE_CHECK_CALLS


def test_every_hidden_cell_is_collapsed_in_jupyter(nb):
    for cell in code_cells(nb):
        if hidden(cell):
            assert cell.metadata.get("jupyter", {}).get("source_hidden") is True


SCOPES = (ast.FunctionDef, ast.Lambda, ast.ListComp, ast.SetComp,
          ast.DictComp, ast.GeneratorExp)


def top_level_names(tree):
    """Names a cell binds at its top level (not inside functions)."""
    names = set()
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        if not isinstance(node, SCOPES + (ast.ClassDef,)):
            stack.extend(ast.iter_child_nodes(node))
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t)
                      if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def free_names(node, bound=frozenset()):
    """Names node loads that no enclosing function, lambda or
    comprehension binds (parameters, assignments, loop targets, except)."""
    if isinstance(node, SCOPES):
        local = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)
                 and isinstance(n.ctx, ast.Store)}
        local |= {n.name for n in ast.walk(node)
                  if isinstance(n, ast.ExceptHandler) and n.name}
        if not isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp,
                                 ast.GeneratorExp)):
            local |= {a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg)}
        bound = bound | local
    found = set()
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
        found.add(node.id)
    for child in ast.iter_child_nodes(node):
        found |= free_names(child, bound)
    return found - bound


def test_each_name_is_defined_above_its_first_use(nb):
    """Reading top to bottom, no cell uses a name that only a later cell
    defines (not even inside a function body)."""
    trees = [ast.parse(c.source) for c in code_cells(nb)]
    defined = set(dir(builtins))
    for index, tree in enumerate(trees):
        own = top_level_names(tree)
        later = set().union(*map(top_level_names, trees[index + 1:]))
        used = free_names(tree)
        early = (used & later) - defined - own
        assert not early, (index, sorted(early))
        defined |= own


def test_no_code_cell_renders_prose(nb):
    for cell in code_cells(nb):
        assert "Markdown(" not in cell.source and "HTML(" not in cell.source
        for output in cell.outputs:
            assert not {"text/markdown", "text/html"} & set(output.get("data", {}))


RUN_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:e-?\d+)?(?![\w.])")


def prose_numbers(markdown):
    """Numbers typed in prose: outside math ($...$) and inline code."""
    text = re.sub(r"\$\$.*?\$\$|\$[^$]*\$|`[^`]*`", " ", markdown, flags=re.S)
    return RUN_NUMBER.findall(text)


def quoted_numbers(source):
    """The typed numbers (second arguments) of quote(...) calls."""
    return {node.args[1].value for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "quote"
            and isinstance(node.args[1], ast.Constant)}


def checks_at_top_level(source):
    """The cell itself calls quote() or claim() (not only defines helpers)."""
    return any(isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
               and getattr(node.value.func, "id", "") in ("quote", "claim")
               for node in ast.parse(source).body)


def checked_prose(nb):
    """(markdown, check cell) for each markdown cell that a hidden cell
    calling quote() or claim() follows; the cell ends by stopping the run
    if any sentence is false."""
    pairs = []
    for cell, after in zip(nb.cells, nb.cells[1:]):
        if (cell.cell_type == "markdown" and after.cell_type == "code"
                and hidden(after) and checks_at_top_level(after.source)):
            pairs.append((cell, after))
    return pairs


def test_every_number_the_prose_quotes_is_checked_against_the_run(nb):
    """Prose quoting results is followed by a hidden cell that checks each
    number typed in it (quote) and each comparison (claim), so a run that
    changes one fails, naming the sentence."""
    pairs = checked_prose(nb)
    assert len(pairs) >= 4
    for markdown, check in pairs:
        assert check.source.rstrip().endswith("stop_if_falsified()")
        missing = set(prose_numbers(markdown.source)) - quoted_numbers(check.source)
        assert not missing, (markdown.source[:60], sorted(missing))


def test_falsified_sentences_stop_the_run_all_named_at_once(hw2):
    hw2.quote("at t = 300 ... (39.6)", "39.6", "39.6")
    hw2.claim("Newton is highest", True)
    hw2.stop_if_falsified()  # nothing false: the run goes on
    hw2.quote("at t = 300 ... (39.6)", "39.6", "41.0")
    hw2.claim("Newton is slowest", False)
    with pytest.raises(AssertionError, match=r"^update the text: 'at t = 300 "
                       r"\.\.\. \(39\.6\)' quotes 39\.6, the run gives 41\.0; "
                       r"'Newton is slowest' is no longer true$"):
        hw2.stop_if_falsified()
    hw2.stop_if_falsified()  # each is told once


def comment(nb):
    (cell,) = [c for c in nb.cells if c.cell_type == "markdown"
               and c.source.startswith("**Comment.**")]
    return cell


def words(markdown):
    """Words as a reader counts them: a math span is one word."""
    text = re.sub(r"\$[^$]*\$", "x", markdown)
    text = re.sub(r"^- ", "", text, flags=re.M)
    return len(text.replace("*", "").replace("`", "").split())


def test_comment_is_three_short_bullets_checked_by_the_run(nb):
    cell = comment(nb)
    bullets = [line for line in cell.source.splitlines() if line.startswith("- ")]
    assert [re.match(r"- \*(\w[\w ]*):\*", b).group(1) for b in bullets] == [
        "Test loss", "Test accuracy", "Runtime"]
    assert words(cell.source) <= COMMENT_WORDS, \
        f"the Comment has {words(cell.source)} words, at most {COMMENT_WORDS}"
    assert cell in [markdown for markdown, _ in checked_prose(nb)]
    for bullet in bullets[:2]:  # the iteration that the numbers belong to
        assert "$t$ = 300" in bullet


def test_parameters_are_named_once_and_used(nb):
    """Each constant of the parameters cell is used by the code, and the
    calls take it from there: no lr=0.1, n_iters=300 ... typed again."""
    cells = code_cells(nb)
    params = cells[0]
    names = {t.id: node.value.value for node in ast.parse(params.source).body
             for t in node.targets}
    assert {"SEED", "SPLIT_SEED", "LEARNING_RATE", "TEST_SIZE", "N_ITERS",
            "L2"} <= set(names)
    rest = [ast.parse(c.source) for c in cells[1:]]
    used = {n.id for tree in rest for n in ast.walk(tree)
            if isinstance(n, ast.Name)}
    assert set(names) <= used
    keywords = {"lr": "LEARNING_RATE", "n_iters": "N_ITERS",
                "test_size": "TEST_SIZE", "seed": "SPLIT_SEED", "l2": "L2",
                "batch_size": "BATCH_SIZE", "rounds": "TIMING_ROUNDS"}
    for tree in rest:
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg in keywords:
                value = node.value
                assert not (isinstance(value, ast.Constant)
                            and value.value == names[keywords[node.arg]]), \
                    f"{node.arg}={value.value} typed again"


def test_figures_are_vector_in_the_notebook(nb):
    """Every figure output carries a PDF (vector) version for the export
    and a PNG at twice its shown size for HiDPI screens in Jupyter."""
    figures = [o for c in code_cells(nb) for o in c.outputs
               if "image/png" in o.get("data", {})]
    assert len(figures) == 2
    for output in figures:
        assert "application/pdf" in output["data"]
        shown = output["metadata"]["image/png"]["width"]
        png = b64decode(output["data"]["image/png"])
        assert int.from_bytes(png[16:20], "big") >= 2 * shown - 1


def test_layout_rules_hold(nb):
    """The rules `make pdf` enforces (tools/layout.py) hold for the stored
    notebook: line widths, ASCII, hidden cells collapsed."""
    assert layout.problems(json.loads(nbformat.writes(nb))) == []


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


def test_export_cells_hold_the_definitions(nb):
    exported = "\n".join(c.source for c in code_cells(nb, EXPORT_TAG))
    for name in VISIBLE_SOLUTION[:5] + ["def quote", "def claim"]:
        assert name in exported


def test_the_definition_order_check_sees_late_names():
    late = ast.parse("def f(a):\n    return g(a) + [b for b in a][0]\n"
                     "for e in range(2):\n    print(e)")
    assert free_names(late) == {"g", "range", "print", "e"}  # e: its own
    assert {"f", "e"} <= top_level_names(late)
