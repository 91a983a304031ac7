"""Helpers for end-to-end tests on hostile inputs: write a params file, run the CLI, read what it said.

The CLI runs in a child process (``python -m funnelkit``), as a user would run it, so the exit code,
the message on stderr and whatever a crash prints are what the test sees.
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600, env: dict | None = None) -> CliResult:
    """``python -m funnelkit ARGS`` in a child process; its exit code, stdout and stderr."""
    child_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    done = subprocess.run([sys.executable, "-m", "funnelkit", *args], cwd=cwd or ROOT, capture_output=True,
                          text=True, timeout=timeout, env=child_env)
    return CliResult(done.returncode, done.stdout, done.stderr)


def write_params(folder: Path, name: str = "params.yaml", **sections) -> Path:
    """A params file in ``folder`` with the given sections (``data={...}, funnel={...}``).

    The crafted logs of :mod:`tests.hostile.logs` span 28 days, too short for the default
    14-day recommendation test period (a validation and a test period must fit in the log, and
    the checks before a run say so): without a ``recommend`` section the file sets 7 days.
    """
    sections.setdefault("recommend", {"test_period": "7D"})
    path = Path(folder) / name
    path.write_text(yaml.safe_dump(sections, sort_keys=False))
    return path


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def params_in(tmp_path):
    """``params_in(**sections)`` writes a params file under the test's tmp folder and returns its path."""
    return lambda **sections: write_params(tmp_path, **sections)
