"""The errors in a LaTeX log, in a few lines (latexmk -quiet and nbconvert
hide them in hundreds of lines).

    python3 tools/latex_log.py LOG [SOURCE]   prints the errors of LOG
"""
import re
import sys
from pathlib import Path

ERROR = re.compile(r"^! (.*)$")
LINE = re.compile(r"^l\.(\d+) ?(.*)$")


def errors(log):
    """[(message, line number or None, text before the error)] of a log."""
    found, lines = [], log.splitlines()
    for i, text in enumerate(lines):
        match = ERROR.match(text)
        if match:
            at = next((LINE.match(t) for t in lines[i + 1:i + 12] if LINE.match(t)), None)
            found.append((match.group(1), int(at.group(1)) if at else None,
                          at.group(2).strip() if at else ""))
    return found


def describe(log_path, source=None):
    """A few lines naming the first error of the log at log_path."""
    found = errors(Path(log_path).read_text(errors="replace"))
    if not found:
        return f"LaTeX failed; see {log_path}"
    message, line, context = found[0]
    where = f"{source}:{line}" if source and line else f"line {line}" if line else ""
    return f"LaTeX error at {where}: {message} ({context})\n  full log: {log_path}"


if __name__ == "__main__":
    print(describe(*sys.argv[1:3]), file=sys.stderr)
