"""Promises about the repository itself: clean notebooks, consistent environments, valid params."""
from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
import yaml

from funnelkit.params import load_params

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert [p.name for p in NOTEBOOKS][:1] == ["01_funnel_eda.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_committed_without_outputs_and_one_parameters_cell(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), "strip outputs"
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1
    lines = "".join(tagged[0]["source"]).strip().splitlines()
    assert lines[0] == 'params_file = "../params/default.yaml"'
    # the only other parameter: where a notebook that writes files puts them (the runner injects it)
    assert lines[1:] in ([], [f'output_dir = "../reports/{path.stem}_files"'])
    assert nb["metadata"]["kernelspec"]["name"] == "funnelkit"
    assert nb["cells"][0]["cell_type"] == "markdown", "the first cell states the question"


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"]) | set(project["optional-dependencies"]["dev"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert set(pip) - {"-e ."} == wanted
    assert "python=3.11" in env["dependencies"]


@pytest.mark.parametrize("name", ["default.yaml", "ci.yaml"])
def test_shipped_params_files_are_valid(name):
    params = load_params(ROOT / "params" / name)
    assert params.data.source is None
    assert params.simulation.cache_dir == (ROOT / "data" / "simulated").resolve()


def test_constraints_pin_every_direct_dependency():
    pins = {line.split("==")[0].lower().replace("_", "-") for line in (ROOT / "constraints.txt").read_text().splitlines()
            if "==" in line}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    import re

    names = {re.split(r"[<>=\[ ]", d)[0].lower() for d in project["dependencies"] + project["optional-dependencies"]["dev"]}
    assert names <= pins, names - pins


STUDY_MODULES = ["drivers.py", "features.py", "predict.py", "funnel", "recommend", "anomaly"]
PRESENTATION = {"plots", "tables", "report", "simulate", "index_page"}


def _funnelkit_imports(path: Path) -> set[str]:
    """The funnelkit modules a file imports (relative or absolute), by name, outside ``plot`` methods
    (a results object's ``.plot()`` delegates to ``plots.py``, as the house conventions say)."""
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "plot":
            node.body = []
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level or module.startswith("funnelkit"):
                names.update(part for part in module.split(".") if part)
                names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(part for alias in node.names if alias.name.startswith("funnelkit")
                         for part in alias.name.split("."))
    return names


@pytest.mark.parametrize("module", STUDY_MODULES)
def test_studies_never_import_presentation_or_the_simulator(module):
    root = ROOT / "funnelkit" / module
    for path in ([root] if root.is_file() else sorted(root.glob("*.py"))):
        assert not _funnelkit_imports(path) & PRESENTATION, f"{path.relative_to(ROOT)} imports presentation"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_reach_the_planted_truth_only_through_groundtruth(path):
    source = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
    assert "funnelkit.simulate" not in source and "source is None" not in source
    assert "open_events(params)" in source
