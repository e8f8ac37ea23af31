"""Shared fixtures. The package is imported from python/ (this folder's parent)
so the tests run against the working tree, whatever is installed."""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
REPO = os.path.dirname(os.path.dirname(HERE))

import libgen  # noqa: E402


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "queue.db")


@pytest.fixture
def tiny_model():
    return os.path.join(REPO, "tests", "fixtures", "tiny-sd15")


@pytest.fixture
def quiet():
    """Context settings that keep the test output clean."""
    return {"log_level": "error"}


def pytest_report_header(config):
    return f"libgen {libgen.version()} from {libgen.library_path}"


@pytest.fixture(autouse=True)
def run_in_tmp(tmp_path, monkeypatch):
    """Relative paths (the default output_dir "outputs") land in a temp dir,
    never in the source tree."""
    monkeypatch.chdir(tmp_path)
