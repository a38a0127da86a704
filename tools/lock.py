"""Run a command holding an exclusive lock on a file: one build at a time.

    python tools/lock.py build/.lock make hand-in

A second build in the same folder waits for the first to finish. The lock
is an flock on the open file, which the command inherits in place of this
process (exec): it ends when the command and its children do.
"""
import fcntl
import os
import sys


def lock(path):
    """Open path and take an exclusive lock on it, waiting if need be."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"another build is running in this folder ({path} is "
              "locked): waiting for it to finish", file=sys.stderr, flush=True)
        fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def main(argv):
    if len(argv) < 2:
        sys.exit("usage: python tools/lock.py LOCKFILE COMMAND [ARG ...]")
    try:
        fd = lock(argv[0])
    except KeyboardInterrupt:  # Ctrl-C while waiting
        sys.exit(130)
    os.set_inheritable(fd, True)
    os.execvp(argv[1], argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])
