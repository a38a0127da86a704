"""The servers the project starts. `make e2e`'s JupyterLab (tools/e2e_export.py)
listens on 127.0.0.1 only, takes a fresh random token for each run, never
shows it (command line, log, output) and refuses a request without it; it
is stopped however the run ends."""
import contextlib
import time
import urllib.error
import urllib.request
from pathlib import Path

from e2e_export import lab_server

START_SECONDS = 120  # JupyterLab starts in seconds; bounded on a loaded machine


def status(url, headers=None):
    """The HTTP status of a GET of url."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}),
                                    timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def listening(url):
    try:
        status(url)
        return True
    except urllib.error.URLError:
        return False


def test_each_run_has_its_own_token_and_a_request_without_it_is_refused(
        tmp_path, capfd):
    """Two runs of the server: one ends normally, one by Ctrl-C."""
    runs = []
    for ending in ("returns", "Ctrl-C"):
        tmp = tmp_path / ending
        (tmp / "root").mkdir(parents=True)
        with contextlib.suppress(KeyboardInterrupt):
            with lab_server(tmp / "root", tmp, time.monotonic() + START_SECONDS) as lab:
                runs.append(lab)
                api = f"{lab.url}/api/contents"
                assert lab.url.startswith("http://127.0.0.1:")
                assert listening(api) and status(api) == 403
                assert status(f"{api}?token=e2e-export") == 403  # the old fixed one
                assert status(f"{api}?token={lab.token[:-1]}") == 403
                assert status(api, lab.headers()) == 200
                cmdline = Path(f"/proc/{lab.process.pid}/cmdline").read_bytes()
                assert lab.token.encode() not in cmdline  # other users can read it
                if ending == "Ctrl-C":
                    raise KeyboardInterrupt
        assert lab.process.poll() is not None
        assert not listening(api)
        assert lab.token not in lab.log.read_text()
    first, second = runs
    assert first.token != second.token
    assert min(len(first.token), len(second.token)) >= 43  # 256 random bits
    printed = capfd.readouterr()
    assert "ServerApp" in printed.err  # Ctrl-C printed the end of its log
    assert not any(lab.token in printed.out + printed.err for lab in runs)
