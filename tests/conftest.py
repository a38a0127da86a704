"""Shared fixtures: the notebook's own definitions, loaded from it; tests of
the stored notebook need it run first."""
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from definitions import load_definitions  # noqa: E402
from project import NOTEBOOK, ran_top_to_bottom  # noqa: E402

# Fixtures that read what `make pdf` stored: the executed notebook, submission/
STORED = {"nb", "submission"}


def pytest_collection_modifyitems(config, items):
    """Tests of the stored notebook when it holds no run (outputs cleared):
    one line saying what to run, instead of a failure in each test."""
    if any(STORED & set(item.fixturenames) for item in items):
        if not ran_top_to_bottom(json.loads((ROOT / NOTEBOOK).read_text())):
            raise pytest.UsageError(
                f"{NOTEBOOK} holds no complete run (outputs cleared, or cells run out "
                "of order): run `make test` (or `make pdf`) first, which runs it")


@pytest.fixture(scope="session")
def hw2():
    """The export-tagged cells of the notebook, run as one module."""
    return load_definitions(ROOT / NOTEBOOK)


@pytest.fixture(scope="session")
def root():
    return ROOT
