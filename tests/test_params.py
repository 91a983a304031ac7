"""The params schema: unknown keys and wrong types stop a run with a message naming them."""
from __future__ import annotations

import datetime as dt

import pytest
import yaml

from funnelkit.errors import ParamsError
from funnelkit.params import load_params, parse_params


def write(tmp_path, text, name="p.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_are_the_full_built_in_run():
    params = parse_params({})
    assert params.data.source is None
    assert [s.name for s in params.funnel.steps] == ["view", "cart", "checkout", "purchase"]
    assert params.funnel.window == dt.timedelta(days=7)


def test_misspelled_key_names_file_key_and_accepted_keys(tmp_path):
    path = write(tmp_path, "funnel:\n  windw: 7D\n")
    with pytest.raises(ParamsError) as err:
        load_params(path)
    message = str(err.value)
    assert str(path) in message and "'funnel.windw' is not accepted" in message
    assert "window" in message and "steps" in message


def test_wrong_type_names_key_and_value(tmp_path):
    with pytest.raises(ParamsError, match=r"'simulation.n_users'.*valid integer.*'many'"):
        load_params(write(tmp_path, "simulation:\n  n_users: many\n"))


def test_bad_duration_and_unknown_step_in_exclusion():
    with pytest.raises(ParamsError, match="'funnel.window'.*duration"):
        parse_params({"funnel": {"window": "soon"}})
    with pytest.raises(ParamsError, match="unknown steps"):
        parse_params({"funnel": {"exclusions": [{"name": "x", "events": ["x"], "between": ["view", "nope"]}]}})
    with pytest.raises(ParamsError, match="earlier step first"):
        parse_params({"funnel": {"exclusions": [{"name": "x", "events": ["x"], "between": ["cart", "view"]}]}})


def test_duplicate_step_names_and_filter_value_shape():
    with pytest.raises(ParamsError, match="unique"):
        parse_params({"funnel": {"steps": [{"name": "a", "events": ["v"]}, {"name": "a", "events": ["c"]}]}})
    with pytest.raises(ParamsError, match="needs a list"):
        parse_params({"funnel": {"steps": [{"name": "a", "events": ["v"], "filters": [{"column": "x", "op": "in", "value": 1}]},
                                           {"name": "b", "events": ["c"]}]}})


def test_relative_paths_resolve_against_the_params_file(tmp_path):
    (tmp_path / "sub").mkdir()
    params = load_params(write(tmp_path / "sub", "data:\n  source: ../events.csv\n"))
    assert params.data.source == (tmp_path / "events.csv").resolve()
    # the default cache folder too, so the runner and the kernels (started elsewhere) agree
    assert params.simulation.cache_dir == (tmp_path / "data" / "simulated").resolve()


def test_missing_and_invalid_yaml_files(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "none.yaml")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(write(tmp_path, "funnel: [unclosed\n"))
    with pytest.raises(ParamsError, match="mapping"):
        load_params(write(tmp_path, "- a list\n"))


@pytest.mark.parametrize("window, text", [("36h", "36h"), ("90s", "90s"), ("1500ms", "1500ms"), ("7D", "7D")])
def test_yaml_round_trip_keeps_every_value(window, text):
    params = parse_params({"funnel": {"window": window}, "engine": {"memory_limit": "512MB"}})
    dumped = params.to_yaml()
    assert f"window: {text}" in dumped
    assert parse_params(yaml.safe_load(dumped)) == params


def test_memory_limit_must_be_a_size():
    with pytest.raises(ParamsError, match="engine.memory_limit"):
        parse_params({"engine": {"memory_limit": "1GB'; CREATE TABLE x AS SELECT 1; SET memory_limit='1GB"}})
