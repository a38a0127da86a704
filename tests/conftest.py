"""Shared fixtures: the notebook's own definitions, loaded from it."""
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from definitions import load_definitions  # noqa: E402
from project import NOTEBOOK  # noqa: E402


@pytest.fixture(scope="session")
def hw2():
    """The export-tagged cells of the notebook, run as one module."""
    return load_definitions(ROOT / NOTEBOOK)


@pytest.fixture(scope="session")
def root():
    return ROOT
