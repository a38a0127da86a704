"""Files written all or nothing (standard library only)."""
import contextlib
import errno
import os
import signal
import stat
import tempfile
from pathlib import Path

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def write_atomic(path, content, expect=None):
    """Replace the file at path by one holding content (text: UTF-8, or
    bytes), all or nothing: a full disk, a crash or a signal leaves the old
    file and no temporary one. With expect (bytes), replace only a file that
    still holds them; returns whether it wrote."""
    path = Path(os.path.realpath(path))
    mode = file_mode(path)
    with signals_held():
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(content.encode() if isinstance(content, str) else content)
                file.flush()
                os.fsync(file.fileno())
            os.chmod(tmp, mode)
            if expect is not None and path.read_bytes() != expect:
                os.unlink(tmp)
                return False
            os.replace(tmp, path)
            return True
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


def write_failure(path, error):
    """The OSError that stopped writing path, as one line saying what to do."""
    if error.errno == errno.ENOSPC:
        return f"disk full while writing {path}; free space and run make pdf again"
    return f"could not write {path} ({error.strerror or error}); run make pdf again"


def file_mode(path):
    """The permission bits of path, or those a new file gets."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@contextlib.contextmanager
def signals_held():
    """Hold SIGINT and SIGTERM back (until the block ends)."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
