"""The errors in a LaTeX log, in a few lines (latexmk -quiet and nbconvert
hide them in hundreds of lines).

    python3 tools/latex_log.py LOG [SOURCE]   prints the errors of LOG
"""
import re
import sys
from pathlib import Path

ERROR = re.compile(r"^! (.*)$")
LINE = re.compile(r"^l\.(\d+) ?(.*)$")
RUNAWAY = "Runaway argument?"
# The last line of a run that LaTeX ended itself (error or not)
FINISHED = re.compile(r"^(Transcript written on|Output written on|No pages of output)", re.M)


def errors(log):
    """[(message, line number or None, text before the error)] of a log.
    An argument that runs away (say `$\\frac{1}{$`) has no line number:
    its text is the argument as LaTeX read it, up to the paragraph's end."""
    found, lines = [], log.splitlines()
    for i, text in enumerate(lines):
        match = ERROR.match(text)
        if match:
            at = next((LINE.match(t) for t in lines[i + 1:i + 12] if LINE.match(t)), None)
            context = at.group(2).strip() if at else ""
            if not at and i >= 2 and lines[i - 2] == RUNAWAY:
                context = lines[i - 1].split(" \\par")[0].removesuffix("\\ETC.").strip()
            found.append((match.group(1), int(at.group(1)) if at else None, context))
    return found


def finished(log):
    """LaTeX ended the run itself (with or without an error), rather than
    being killed."""
    return bool(FINISHED.search(log))


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
