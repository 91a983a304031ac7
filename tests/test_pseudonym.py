"""Keyed pseudonyms for ids shown in reports (funnelkit.pseudonym), against hmac computed here."""
import hashlib
import hmac

import pandas as pd
import pytest

from funnelkit.pseudonym import pseudonym, pseudonymise


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("FUNNELKIT_ID_KEY", "k1")
    return b"k1"


def expected(value: str, key: bytes) -> str:
    return "id-" + hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:12]


def test_pseudonym_is_the_keyed_hash_of_the_id_and_changes_with_the_key(key, monkeypatch):
    assert pseudonym("u00042") == expected("u00042", key)
    monkeypatch.setenv("FUNNELKIT_ID_KEY", "k2")
    assert pseudonym("u00042") == expected("u00042", b"k2") != expected("u00042", key)


def test_an_id_read_as_float_gets_the_pseudonym_of_the_integer(key):
    assert pseudonym(12.0) == pseudonym(12) == expected("12", key)


def test_pseudonymise_replaces_columns_and_index_and_leaves_the_callers_frame_alone(key):
    frame = pd.DataFrame({"user_id": ["a", "b", None], "session_id": ["s1", "s2", "s3"], "n": [1, 2, 3]})
    frame.index = pd.Index(["a", "b", "c"], name="user_id")
    out = pseudonymise(frame, ["user_id", "session_id", "absent"])
    assert out["user_id"].tolist()[:2] == [expected("a", key), expected("b", key)]
    assert out["user_id"].isna().tolist() == [False, False, True]
    assert out["session_id"].tolist() == [expected(s, key) for s in ("s1", "s2", "s3")]
    assert out.index.tolist() == [expected(s, key) for s in ("a", "b", "c")]
    assert frame["user_id"].tolist()[:2] == ["a", "b"] and frame.index.tolist() == ["a", "b", "c"]
    assert out["n"].tolist() == [1, 2, 3]


def test_pseudonymise_disabled_returns_the_ids(key):
    frame = pd.DataFrame({"user_id": ["a"]})
    assert pseudonymise(frame, enabled=False)["user_id"].tolist() == ["a"]


def test_without_a_key_one_is_drawn_once_for_the_process(monkeypatch):
    monkeypatch.delenv("FUNNELKIT_ID_KEY", raising=False)
    first = pseudonym("u1")
    assert first.startswith("id-") and pseudonym("u1") == first
