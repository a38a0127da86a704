"""Write the project's PDF export settings into the running Python's Jupyter config.

    .venv/bin/python tools/jupyter_config.py

`jupyter nbconvert` reads jupyter_nbconvert_config.json, JupyterLab's
File > Save and Export Notebook As > PDF uses the server's configuration
(jupyter_server_config.json). Both get the same settings, from here, in
<sys.prefix>/etc/jupyter, so `make pdf` and the menu give the same document:
template tools/hw2_pdf.tex.j2 (unnumbered headings, no title block; LaTeX
exports too), no source for cells tagged `commentary` or `hide-input` (their
outputs stay), no cells tagged `remove-cell` at all, consecutive stream outputs
merged.
"""
import json
import sys
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent / "hw2_pdf.tex.j2"

SETTINGS = {
    "LatexExporter": {"template_file": str(TEMPLATE)},
    # JupyterLab shows (and saves) consecutive prints as one output; a
    # notebook run by nbclient can store them split, which in LaTeX adds space.
    "CoalesceStreamsPreprocessor": {"enabled": True},
    "TagRemovePreprocessor": {
        "enabled": True,
        "remove_input_tags": ["commentary", "hide-input"],
        "remove_cell_tags": ["remove-cell"],
    },
}

FILES = ("jupyter_nbconvert_config.json", "jupyter_server_config.json")


def write(config_dir):
    config_dir = Path(config_dir)
    config_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(SETTINGS, indent=2) + "\n"
    for name in FILES:
        path = config_dir / name
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return [config_dir / name for name in FILES]


if __name__ == "__main__":
    for path in write(Path(sys.prefix) / "etc" / "jupyter"):
        print(f"wrote {path}")
