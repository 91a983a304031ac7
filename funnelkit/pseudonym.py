"""Pseudonyms for customer ids in the reports people forward.

A report travels by e-mail; the shop's customer ids should not. Every table a
report shows replaces ids by a keyed hash (HMAC-SHA256, 12 hex digits): the
same id gets the same pseudonym everywhere within a run, and nobody without
the key can go back from a pseudonym to the id or test a guessed id. The
follow-up CSVs that need the real ids keep them beside the pseudonym, so an
analyst can act on a row of the report.

The key comes from the environment variable named by ``report.id_key_env``
(``FUNNELKIT_ID_KEY`` by default), never from a file that is shown or
written: set it to keep pseudonyms stable across runs. Without it, the runner
draws a random key for the run and hands it to every notebook it executes
(the kernels inherit its environment), so pseudonyms agree across the
notebooks of one run and change from run to run.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from typing import Iterable

import pandas as pd

DEFAULT_KEY_ENV = "FUNNELKIT_ID_KEY"
#: Prefix of every pseudonym: a reader sees it is not an id of the shop.
PREFIX = "id-"
_DIGITS = 12  # 48 bits: no collision expected below ~10 million ids


def ensure_key(env: str = DEFAULT_KEY_ENV) -> None:
    """Set ``env`` to a random key for this process and its children, unless it is set already."""
    if not os.environ.get(env):
        os.environ[env] = secrets.token_hex(32)


def _key(env: str) -> bytes:
    ensure_key(env)  # outside the runner (JupyterLab): a key for this kernel's lifetime
    return os.environ[env].encode()


def pseudonym(value, *, env: str = DEFAULT_KEY_ENV) -> str:
    """The pseudonym of one id (``id-3f9a0c12d4e7``); a missing id stays missing (``""``)."""
    return _pseudonyms([value], _key(env))[0]


def _pseudonyms(values: Iterable, key: bytes) -> list:
    out = []
    for value in values:
        if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
            out.append(value)
            continue
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # a user id read as 12.0 in one table and 12 in another is one customer
        text = str(value)
        out.append(PREFIX + hmac.new(key, text.encode(), hashlib.sha256).hexdigest()[:_DIGITS])
    return out


def pseudonymise(frame: pd.DataFrame, columns: Iterable[str] = ("user_id",), *, enabled: bool = True,
                 env: str = DEFAULT_KEY_ENV) -> pd.DataFrame:
    """A copy of ``frame`` with the ids in ``columns`` (and an index of that name) replaced by pseudonyms.

    Columns that are absent are skipped, so one call covers tables with and
    without a ``session_id``. ``enabled=False`` (``report.pseudonymise_ids:
    false``) returns the frame unchanged: for reports that stay inside the shop.
    The caller's frame is never modified.
    """
    if not enabled:
        return frame
    key = _key(env)
    out = frame.copy()
    for column in columns:
        if column in out.columns:
            out[column] = _pseudonyms(out[column].tolist(), key)
        if out.index.name == column:
            out.index = pd.Index(_pseudonyms(out.index.tolist(), key), name=column)
    return out
