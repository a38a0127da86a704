"""Run a build holding an exclusive lock on a file: one build at a time.

    python tools/lock.py LOCKFILE [--on-failure COMMAND] BUILD [ARG ...]

A second build in the same folder waits for the first to finish (and says
so). The lock is an flock on the open file, which BUILD inherits: it ends
when BUILD and its children do. A lock file removed while this waited for
it (rm -rf build) is made and taken again.

BUILD runs in a session of its own and this process stays its parent:
SIGTERM or SIGINT sent to this process alone (`make` passes SIGTERM on to
its recipe's process only) or to the terminal's process group (Ctrl-C) goes
to every process of the build once, so the whole build stops (so does a
closed terminal, SIGHUP). If BUILD
failed or was stopped, the shell command COMMAND says what is left (with
BUILD_STARTED in its environment: when the lock was taken, in seconds since
the epoch); then this exits as BUILD did, by the same signal if it was
stopped.
"""
import fcntl
import os
import signal
import subprocess
import sys
import time

from project import BUILD_STARTED

# A closed terminal (SIGHUP) stops the build as SIGTERM does
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def lock(path):
    """Open path and take an exclusive lock on it, waiting if need be; the
    open file descriptor. A file removed or replaced while this waited is
    locked anew: holding a file no other build can open would be no lock."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    said = False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not said:
                print(f"another build is running in this folder ({path} is "
                      "locked): waiting for it to finish", file=sys.stderr, flush=True)
                said = True
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def run(fd, argv):
    """Run argv (holding fd) in a session of its own, passing a stop signal
    on to all of it once; its exit status (negative: killed by a signal)
    and the stop signal this process received, if any."""
    received, build = [], None

    def stop(signum, frame):
        if not received:
            received.append(signum)
            if build is not None:
                forward(build, signum)

    for signum in STOP_SIGNALS:
        signal.signal(signum, stop)
    build = subprocess.Popen(argv, pass_fds=(fd,), start_new_session=True)
    if received:  # it came while the build started
        forward(build, received[0])
    return build.wait(), (received[0] if received else None)


def forward(build, signum):
    """Send signum to every process of the build (a hang-up as SIGTERM)."""
    try:
        os.killpg(build.pid, signal.SIGTERM if signum == signal.SIGHUP else signum)
    except ProcessLookupError:
        pass


def main(argv):
    on_failure = None
    if len(argv) > 2 and argv[1] == "--on-failure":
        on_failure = argv[2]
        argv = argv[:1] + argv[3:]
    if len(argv) < 2:
        sys.exit("usage: python tools/lock.py LOCKFILE [--on-failure COMMAND] "
                 "BUILD [ARG ...]")
    try:
        fd = lock(argv[0])
    except KeyboardInterrupt:  # Ctrl-C while waiting
        sys.exit(130)
    started = time.time()
    try:
        code, stopped_by = run(fd, argv[1:])
    except OSError as error:
        sys.exit(f"{argv[1]}: {error.strerror or error}")
    if (code or stopped_by) and on_failure:
        for signum in STOP_SIGNALS:  # say it even if stopped twice
            signal.signal(signum, signal.SIG_IGN)
        subprocess.run(on_failure, shell=True, start_new_session=True,
                       env=dict(os.environ, **{BUILD_STARTED: repr(started)}))
    signum = stopped_by or (-code if code < 0 else None)
    if signum:  # die as the build did: the caller (make, a shell) sees it
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    sys.exit(code)


if __name__ == "__main__":
    main(sys.argv[1:])
