"""Execute a notebook in place, unless nothing it depends on has changed.

    python tools/run_notebook.py NOTEBOOK [--stamp FILE [INPUT ...]]

With --stamp, the run is skipped when the notebook's code cells (with their
stored outputs) and the INPUT files and folders are as the last complete run
left them: FILE holds their digest. A file that is not a valid notebook, or
whose cells' sources break a layout rule (tools/layout.py: a code line too
long, say), is refused before anything runs. Until a run is needed this
imports only the standard library (nbformat alone takes seconds to import).
"""
import argparse
import json
import re
import sys
from pathlib import Path

import layout
from project import NoLoopback, NotANotebook, check_loopback, read_notebook, run_digest

# A terminal's colour codes, which the kernel puts in tracebacks
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def unchanged(stamp, nb, inputs):
    return stamp.is_file() and stamp.read_text().strip() == run_digest(nb, inputs)


def run(notebook, stamp, inputs):
    """Execute the notebook and write the stamp; on failure exit with one
    message."""
    from nbclient.exceptions import CellExecutionError
    from files import write_atomic, write_failure
    from notebook import Stopped, execute, serialize
    try:
        build = stamp.parent if stamp else None
        nb = execute(notebook, aside=build, scratch=build, stop_on_signals=True)
    except CellExecutionError as error:
        text = str(error) if sys.stderr.isatty() else ANSI.sub("", str(error))
        if stamp is None:
            sys.exit(f"{text}\n{notebook}: the file is unchanged.")
        # The error's own words on the terminal, the cell and its traceback
        # in a log beside the stamp
        log = stamp.parent / f"{Path(notebook).stem}.run.log"
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(log, ANSI.sub("", str(error)) + "\n")
        except OSError as failure:
            sys.exit(f"{text}\n{notebook}: the file is unchanged "
                     f"({write_failure(log, failure)}).")
        sys.exit(f"{notebook}: a cell failed: {error.ename}: {error.evalue}\n"
                 f"(the cell and its traceback: {log}); the file is unchanged.")
    except Stopped as stopped:
        print(stopped, file=sys.stderr)
        sys.exit(stopped.exit_code)
    except KeyboardInterrupt:
        sys.exit(f"{notebook}: interrupted; the file is unchanged.")
    if stamp:
        try:
            stamp.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(stamp, run_digest(json.loads(serialize(nb)), inputs) + "\n")
        except OSError as error:
            sys.exit(f"{notebook}: {write_failure(stamp, error)}")


def parse(argv):
    parser = argparse.ArgumentParser(prog="tools/run_notebook.py")
    parser.add_argument("notebook")
    parser.add_argument("--stamp", help="skip the run if nothing changed "
                        "since the run that wrote this file")
    parser.add_argument("inputs", nargs="*", help="files and folders the "
                        "run reads or writes (with --stamp)")
    return parser.parse_intermixed_args(argv)


def main(argv):
    args = parse(argv)
    stamp = args.stamp and Path(args.stamp)
    try:
        _, nb = read_notebook(args.notebook)
        if stamp and unchanged(stamp, nb, args.inputs):
            print(f"{args.notebook}: unchanged since its last run, not run again")
            return
        broken = layout.source_rules_broken(nb)  # before minutes of running
        if broken:
            sys.exit(f"{args.notebook} breaks the layout rules, so it was not run (the "
                     "file is unchanged):\n  " + "\n  ".join(broken[:5]))
        check_loopback(args.notebook)  # before seconds of imports
    except (NotANotebook, NoLoopback, OSError) as error:
        sys.exit(str(error))
    run(args.notebook, stamp, args.inputs)


if __name__ == "__main__":
    main(sys.argv[1:])
