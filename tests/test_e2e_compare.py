"""How `make e2e` compares JupyterLab's PDF with the build's (tools/e2e_export.py):
page by page, words outside the figures, numbers masked. Small LaTeX
documents that include Matplotlib figures as the notebook's PDF does."""
import io
import subprocess

import matplotlib
import pytest

from e2e_export import FigureNotFound, differences, outside_figures, raw_text, words

matplotlib.use("pdf")
import matplotlib.pyplot as plt  # noqa: E402

PAGE = r"""\documentclass{article}
\usepackage{graphicx}
\begin{document}
%s
\begin{center}\includegraphics[width=0.8\linewidth]{%s}\end{center}
The update took %s ms in all; Newton's method ends lowest.
\newpage
A second page.
\end{document}
"""


def timing_figure(seconds):
    """A figure whose x axis shows measured times (its ticks follow them)."""
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot(seconds, [3, 2, 1], label="gradient descent")
    ax.set(xlabel="cumulative update time", ylabel="test loss")
    ax.legend()
    out = io.BytesIO()
    fig.savefig(out, format="pdf", bbox_inches="tight")  # as Jupyter shows figures
    plt.close(fig)
    return out.getvalue()


@pytest.fixture(scope="module")
def documents(tmp_path_factory):
    """{name: (PDF path, [figure bytes])}: the build's, a new run's (other
    timings) and a new run's with one word of its text changed."""
    folder = tmp_path_factory.mktemp("e2e")
    figures = {"build": timing_figure([0.0, 0.02, 0.04]),
               "rerun": timing_figure([0.0, 0.0007, 0.0031])}
    made = {}
    for name, figure, prose, ms in (
            ("build", "build", "Gradient descent needs many steps.", "12"),
            ("rerun", "rerun", "Gradient descent needs many steps.", "873"),
            ("altered", "rerun", "Gradient descent needs few steps.", "873")):
        (folder / f"{name}.pdf.fig.pdf").write_bytes(figures[figure])
        (folder / f"{name}.tex").write_text(PAGE % (prose, f"{name}.pdf.fig.pdf", ms))
        subprocess.run(["xelatex", "-interaction=nonstopmode", "-halt-on-error",
                        f"{name}.tex"], cwd=folder, check=True, capture_output=True)
        made[name] = (folder / f"{name}.pdf", [figures[figure]])
    return made


def test_figures_differ_in_their_text(documents):
    """The two runs' figures differ (ticks, an offset): a real test."""
    texts = [words(raw_text(documents[name][1][0])) for name in ("build", "rerun")]
    assert texts[0] != texts[1]
    assert "gradient" in texts[0] and "gradient" in texts[1]


def test_a_new_run_compares_equal(documents):
    assert differences(outside_figures(*documents["build"]),
                       outside_figures(*documents["rerun"])) == []


def test_one_changed_word_is_a_difference(documents):
    found = differences(outside_figures(*documents["build"]),
                        outside_figures(*documents["altered"]))
    assert found[0] == "1 differences, the first ones:"
    assert "page 1: Gradient descent needs many steps." in found[1]
    assert "page 1: Gradient descent needs few steps." in found[1]


def test_a_figure_not_shown_is_reported(documents):
    pdf, _ = documents["build"]
    with pytest.raises(FigureNotFound):
        outside_figures(pdf, [timing_figure([0.0, 0.02, 0.05])])  # one tick more


def test_page_counts_must_match(documents):
    pages = outside_figures(*documents["build"])
    assert len(pages) == 2
    assert differences(pages, pages[:1])[0] == "2 pages, 1 pages"
