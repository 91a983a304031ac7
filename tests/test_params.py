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


# --------------------------------------------------------------------------- hostile params files


def test_billion_laughs_is_refused_with_a_short_message(tmp_path):
    levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi"):
        levels.append(f"{name}: &{name} [{','.join(['*' + prev] * 9)}]")
    path = write(tmp_path, "\n".join(levels) + "\n")
    assert path.stat().st_size < 400
    with pytest.raises(ParamsError) as err:
        load_params(path)
    assert "aliases" in str(err.value) and len(str(err.value)) < 500


def test_a_few_aliases_are_still_fine(tmp_path):
    text = ("funnel:\n  steps:\n    - {name: view, events: [view], filters: &f [{column: device, value: mobile}]}\n"
            "    - {name: cart, events: [cart], filters: *f}\n")
    params = load_params(write(tmp_path, text))
    assert params.funnel.steps[1].filters[0].value == "mobile"


@pytest.mark.parametrize("text, message", [
    ("a: " + "[" * 5000 + "]" * 5000 + "\n", "nested more than 50 levels"),
    ("a: &a [*a]\n", "recursive"),
])
def test_deep_or_recursive_yaml_is_a_params_error(tmp_path, text, message):
    with pytest.raises(ParamsError, match=message):
        load_params(write(tmp_path, text))


def test_non_utf8_and_huge_files_are_params_errors(tmp_path):
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("data:\n  currency: \u20ac\n".encode("cp1252"))
    with pytest.raises(ParamsError, match=r"not UTF-8 text \(byte 0x80 at offset 18\)"):
        load_params(latin)
    huge = write(tmp_path, "# padding\n" * 200_000, name="huge.yaml")
    with pytest.raises(ParamsError, match="too large for a params file"):
        load_params(huge)


def test_nul_byte_in_source_is_a_params_error(tmp_path):
    with pytest.raises(ParamsError, match=r"'data.source'.*NUL byte"):
        load_params(write(tmp_path, 'data:\n  source: "ev\\0.csv"\n'))


def test_a_huge_value_is_not_echoed_whole():
    with pytest.raises(ParamsError) as err:
        parse_params({"funnel": {"window": "x" * 1_000_000}})
    assert len(str(err.value)) < 1000 and "'funnel.window'" in str(err.value)


@pytest.mark.parametrize("raw, key", [
    ({"data": {"session_gap_minutes": float("inf")}}, "data.session_gap_minutes"),
    ({"data": {"session_gap_minutes": float("nan")}}, "data.session_gap_minutes"),
    ({"funnel": {"steps": [{"name": "a", "events": ["view"], "filters": [{"column": "price", "op": "<",
                                                                          "value": float("nan")}]},
                           {"name": "b", "events": ["cart"]}]}}, "funnel.steps.0.filters.0.value"),
    ({"funnel": {"steps": [{"name": "a", "events": ["view"], "filters": [{"column": "price", "op": "in",
                                                                          "value": [1.0, float("inf")]}]},
                           {"name": "b", "events": ["cart"]}]}}, "funnel.steps.0.filters.0.value"),
])
def test_nan_and_inf_are_rejected_by_the_schema(raw, key):
    with pytest.raises(ParamsError, match=f"'{key}'") as err:
        parse_params(raw)
    assert "finite" in str(err.value) and str(err.value).count("\n") == 1  # one line per bad key


# --------------------------------------------------------------------------- defaults that fit the format


@pytest.mark.parametrize("fmt, steps", [
    ("rees46", ["view", "cart", "purchase"]),
    ("retailrocket", ["view", "cart", "purchase"]),
    ("ga4", ["view", "cart", "checkout", "purchase"]),
    ("canonical", ["view", "cart", "checkout", "purchase"]),
])
def test_default_steps_fit_the_format(fmt, steps):
    params = parse_params({"data": {"format": fmt}, "funnel": {"window": "2D"}})
    assert [s.name for s in params.funnel.steps] == steps
    assert params.funnel.window == dt.timedelta(days=2)
    assert parse_params(yaml.safe_load(params.to_yaml())) == params


def test_explicit_steps_are_kept_for_any_format():
    given = [{"name": "view", "events": ["view"]}, {"name": "checkout", "events": ["checkout"]}]
    params = parse_params({"data": {"format": "rees46"}, "funnel": {"steps": given}})
    assert [s.name for s in params.funnel.steps] == ["view", "checkout"]


def test_default_steps_fit_the_format_when_built_in_code():
    from funnelkit.params import DataParams, FunnelParams, Params

    params = Params(data=DataParams(format="retailrocket"), funnel=FunnelParams(window=dt.timedelta(hours=2)))
    assert [s.name for s in params.funnel.steps] == ["view", "cart", "purchase"]
    assert params.funnel.window == dt.timedelta(hours=2)


@pytest.mark.parametrize("td, words", [
    (dt.timedelta(minutes=7), "7 minutes"),
    (dt.timedelta(days=1, hours=12), "1 day 12 hours"),
    (dt.timedelta(hours=36), "1 day 12 hours"),
    (dt.timedelta(seconds=90), "1 minute 30 seconds"),
    (dt.timedelta(milliseconds=1500), "1.5 seconds"),
    (dt.timedelta(seconds=1), "1 second"),
    (dt.timedelta(days=7), "7 days"),
    (dt.timedelta(0), "0 seconds"),
])
def test_describe_duration_in_words(td, words):
    from funnelkit.params import describe_duration

    assert describe_duration(td) == words


def test_window_7m_is_seven_minutes():
    assert parse_params({"funnel": {"window": "7m"}}).funnel.window == dt.timedelta(minutes=7)


def test_the_drivers_section_defaults_and_its_seed_follows_the_shop():
    from funnelkit.params import DriversParams, Params, SimulationParams

    params = parse_params({"simulation": {"seed": 11}})
    assert params.drivers.window == dt.timedelta(days=1) and params.drivers.reference_price == 50.0
    assert (params.drivers.before, params.drivers.folds, params.drivers.max_rows) == ("cart", 5, 20_000)
    # unset, the study is seeded as it always was, by the shop's seed; set, its own
    assert params.drivers.seed == 11 and parse_params({}).drivers.seed == 7
    assert parse_params({"simulation": {"seed": 11}, "drivers": {"seed": 3}}).drivers.seed == 3
    assert Params(simulation=SimulationParams(seed=5), drivers=DriversParams(folds=3)).drivers.seed == 5
    assert parse_params(yaml.safe_load(params.to_yaml())) == params
    assert parse_params({"drivers": {"window": "6h", "before": None, "max_rows": None}}).drivers.before is None
    with pytest.raises(ParamsError, match="'drivers.folds'"):
        parse_params({"drivers": {"folds": 1}})
    with pytest.raises(ParamsError, match="'drivers.windw' is not accepted.*reference_price"):
        parse_params({"drivers": {"windw": "1D"}})
