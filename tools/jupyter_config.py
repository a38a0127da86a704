"""Write the project's PDF export settings into the running Python's Jupyter config.

    .venv/bin/python tools/jupyter_config.py

`jupyter nbconvert` reads jupyter_nbconvert_config.json, JupyterLab's
File > Save and Export Notebook As > PDF uses the server's configuration
(jupyter_server_config.json). Both get the same settings, from here, in
<sys.prefix>/etc/jupyter, so `make pdf` and the menu give the same document:
template tools/hw2_pdf.tex.j2 (unnumbered headings, no title block; LaTeX
exports too), no "In [3]:" prompts, no source for cells tagged `hide-input`
(their outputs stay), no cells tagged `remove-cell` at all, consecutive
stream outputs merged. Setup runs this every time, so the template's path
follows the project folder when it moves.
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from project import HIDE_INPUT_TAG, REMOVE_CELL_TAG, TEMPLATE  # noqa: E402

SETTINGS = {
    "LatexExporter": {"template_file": str(TEMPLATE)},
    "TemplateExporter": {"exclude_input_prompt": True,
                         "exclude_output_prompt": True},
    # JupyterLab shows (and saves) consecutive prints as one output; a
    # notebook run by nbclient can store them split, which in LaTeX adds space.
    "CoalesceStreamsPreprocessor": {"enabled": True},
    "TagRemovePreprocessor": {
        "enabled": True,
        "remove_input_tags": [HIDE_INPUT_TAG],
        "remove_cell_tags": [REMOVE_CELL_TAG],
    },
}

FILES = ("jupyter_nbconvert_config.json", "jupyter_server_config.json")


def config_dir():
    return Path(sys.prefix) / "etc" / "jupyter"


def write(folder):
    """Write both files in folder, each only if it differs; the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(SETTINGS, indent=2) + "\n"
    for name in FILES:
        path = folder / name
        if not path.is_file() or path.read_text() != text:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(path)
    return [folder / name for name in FILES]


if __name__ == "__main__":
    for path in write(config_dir()):
        print(f"wrote {path}")
