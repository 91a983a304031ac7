"""Load an event log into DuckDB in the canonical schema, checking it on the way.

Formats
-------
A source is a CSV, gzipped CSV (``.csv.gz``) or Parquet file, or a folder
holding files of one of these kinds (searched recursively; names starting
with ``.`` or ``_``, such as ``_SUCCESS``, are skipped). DuckDB reads the
files and the events never leave it; the input files are only read. A path
is never a pattern: a file named ``ev[1].csv`` or ``a*b.csv`` is read, and
only it (the fingerprint covers the same files as the read).

``canonical``
    Columns named as in :data:`funnelkit.schema.COLUMNS`; any other column
    is a segment. The built-in simulator writes this format.
``rees46``
    REES46 "eCommerce behavior data from multi category store":
    ``product_id`` → item_id, ``category_code`` (``category_id`` when the code
    is empty) → category, ``user_session`` → session_id; ``brand`` is a
    segment; event types ``view``, ``cart``, ``purchase`` map to themselves
    and ``remove_from_cart`` is kept under its own name.
``retailrocket``
    RetailRocket ``events.csv``: ``visitorid`` → user_id, ``timestamp``
    (epoch milliseconds) → event_time, ``event`` → event_type (``addtocart``
    → cart, ``transaction`` → purchase), ``itemid`` → item_id. Sessions are
    derived. ``transactionid`` is dropped: it is an order id, not a segment
    anyone breaks a funnel down by (list it in ``data.segments`` to keep it).
``ga4``
    Flattened GA4 BigQuery export: ``event_timestamp`` (epoch microseconds),
    ``event_name`` (``view_item`` → view, ``add_to_cart`` → cart,
    ``begin_checkout`` → checkout), ``user_pseudo_id``, ``item_id``,
    ``item_category``, ``price``. GA4 session ids are unique per user only,
    so session_id is ``user_pseudo_id || ':' || ga_session_id``.
``custom``
    ``data.columns`` maps canonical names to source columns (a canonical
    name left out is looked up under its own name).

For every format ``data.columns`` overrides column names, ``data.event_names``
adds to the event name mapping, and ``data.segments`` lists the columns kept
as segments (null keeps every column not used otherwise; the
``__index_level_N__`` columns pandas writes for an index are never segments).
A mapping onto a name the log's own events already carry (raw ``cart``
page views and ``add_to_cart: cart``) would merge two kinds of events: it is
a SchemaError naming both names and their counts, unless
``data.merge_event_names`` is true.

Output
------
A table with ``user_id``, ``session_id`` (VARCHAR), ``event_time``
(TIMESTAMPTZ, UTC), ``event_type`` (VARCHAR), then ``item_id``,
``category`` (VARCHAR) and ``price`` (DOUBLE) when the source has them, then
the segment columns, ordered by user and time. Ids are text: numeric ids
become their decimal digits. Without a session column, a user's session
starts at their first event and at every event more than
``session_gap_minutes`` after their previous one (a gap exactly equal to the
threshold continues the session); the id is ``user_id || ':' || n`` with
``n`` = 1, 2, ... in time order.

Validation
----------
Each problem stops the load with a :class:`~funnelkit.errors.SchemaError`
(the columns or types do not fit) or :class:`~funnelkit.errors.DataError`
(the values do not), naming the file or folder, the column, the number of
rows and the first offending row (row 1 is the first row after a CSV
header). Checked: required columns; numeric timestamps without a known unit;
strings with a time zone mixed with strings without one; times without a
zone when ``data.assume_timezone`` is not set (DuckDB would silently read
them in its session zone); unparsable timestamps; null or empty user ids
and source session ids (``null_ids: drop`` drops and counts them);
unparsable or non-finite prices (``inf``, ``nan``). Exact duplicate rows are
counted and dropped only with ``drop_duplicates``. Event names outside
view/cart/checkout/purchase are kept under their raw name and counted in the
:class:`ValidationReport`.

A time written without a zone is any date (``-`` or ``/``) followed by digits,
colons, dots and spaces only (``2026-03-29  1:5``); it is read in
``data.assume_timezone``. Anything with a letter, ``+`` or ``-`` after the
date is read as zoned, and is unparsable when DuckDB cannot read the zone
(``1:05 PM`` is never read as 01:05).

Plausible times (``data.time_range``): events outside the range are excluded
before sessions are derived, counted in the report and in
:meth:`ValidationReport.warnings`, so one stray event in 2099 or 1970 moves
neither the data end (where conversion windows are censored) nor the first
trend period. ``auto`` (default) takes the bulk of the log, from the day of
its 5th percentile event to the day of its 95th, and widens it on each side
by its own length, at least 7 days; ``{start, end}`` keeps start <= time <
end; ``all`` keeps everything. Whatever the rule, times pandas cannot hold
(``infinity``, year 12026; outside 1678-2261) are excluded, or with ``all``
an error.

Refunds: a purchase with a negative price becomes event type ``refund``
(:data:`funnelkit.schema.EVENTS`), so it is neither a conversion nor revenue
(every revenue figure sums purchase prices); the report counts refunds and
their total apart.
"""
from __future__ import annotations

import glob
import hashlib
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from .engines.duckdb import DuckDBEngine, connect
from .engines.sql import literal, quote, timestamp_literal, unique_name
from .errors import DataError, SchemaError
from .eventlog import EventLog
from .params import DataParams, EngineParams, Params, describe_duration
from .schema import COLUMNS, EVENTS, NUMERIC_TYPES, US_PER_DAY, US_PER_MILLISECOND, US_PER_MINUTE, US_PER_SECOND

_SUFFIXES = {".csv.gz": "csv", ".csv": "csv", ".parquet": "parquet"}
#: what each kind of input file is, in words (messages)
KIND_NAMES = {"csv": "comma-separated CSV with a header row", "parquet": "Parquet"}
_EPOCH_US = {"s": US_PER_SECOND, "ms": US_PER_MILLISECOND, "us": 1}
# a date, then (after an optional T) no letter, + or -: a time without a zone, whatever its spacing and
# digits ('2026-03-29  1:5', '2026/03/29 10:05'). Anything else (Z, +02:00, UTC, EST, PM,
# America/Argentina/Buenos_Aires, ...) is read as zoned; what DuckDB cannot read is unparsable.
_NAIVE_RE = r"\d+[-/]\d{1,2}[-/]\d{1,2}[Tt]?[^A-Za-z+\-]*"
_NUMBER_RE = r"-?\d+(\.\d*)?"
_GLOB_CHARS = re.compile(r"[*?\[]")
_PANDAS_INDEX = re.compile(r"__index_level_\d+__")  # how pandas' to_parquet writes a non-default index
# times pandas can hold (nanoseconds since 1970 in 64 bits): whatever lies outside is never kept
TIME_LIMITS = (pd.Timestamp("1678-01-01", tz="UTC"), pd.Timestamp("2262-01-01", tz="UTC"))
AUTO_MARGIN_DAYS = 7
"""Least widening of the bulk of the log on each side (``data.time_range: auto``), in days."""


@dataclass(frozen=True)
class _Format:
    columns: dict[str, str]              # canonical name -> source column
    events: dict[str, str]               # source event name -> canonical event type
    timestamp_unit: str | None = None
    ignored: tuple[str, ...] = ()        # source columns that are not segments by default
    category_fallback: str | None = None
    session_per_user: bool = False       # session ids repeat across users: prefix the user id


_IDENTITY = {c: c for c in COLUMNS.canonical}
_FORMATS = {
    "canonical": _Format(_IDENTITY, {}),
    "custom": _Format(_IDENTITY, {}),
    "rees46": _Format(
        {**_IDENTITY, COLUMNS.session_id: "user_session", COLUMNS.item_id: "product_id",
         COLUMNS.category: "category_code"},
        {e: e for e in (EVENTS.view, EVENTS.cart, EVENTS.purchase)},
        category_fallback="category_id"),
    "retailrocket": _Format(
        {COLUMNS.user_id: "visitorid", COLUMNS.event_time: "timestamp", COLUMNS.event_type: "event",
         COLUMNS.item_id: "itemid"},
        {"view": EVENTS.view, "addtocart": EVENTS.cart, "transaction": EVENTS.purchase},
        timestamp_unit="ms", ignored=("transactionid",)),
    "ga4": _Format(
        {COLUMNS.user_id: "user_pseudo_id", COLUMNS.session_id: "ga_session_id",
         COLUMNS.event_time: "event_timestamp", COLUMNS.event_type: "event_name",
         COLUMNS.item_id: "item_id", COLUMNS.category: "item_category", COLUMNS.price: "price"},
        {"view_item": EVENTS.view, "add_to_cart": EVENTS.cart, "begin_checkout": EVENTS.checkout,
         "purchase": EVENTS.purchase},
        timestamp_unit="us", session_per_user=True),
}


@dataclass
class ValidationReport:
    """What loading found in the data, for the data-quality section of a report.

    Attributes
    ----------
    source, format : str
        What was read and how; ``files`` is the number of input files.
    rows_read, rows_kept : int
        Rows in the input, and events in the loaded table.
    duplicates : int
        Exact duplicate rows after mapping (copies beyond the first); they are
        dropped when ``duplicates_dropped`` (``data.drop_duplicates``).
    null_ids_dropped : int
        Rows dropped for a missing user or session id (``null_ids: drop``).
    unmapped_events : dict
        Event type outside view/cart/checkout/purchase → events kept under it.
    first_event, last_event : pandas.Timestamp
        Earliest and latest event time (UTC).
    users, sessions : int
        Distinct users and sessions among the kept events; ``sessions_derived``
        says whether sessions come from the ``session_gap_minutes`` inactivity gap.
    time_zone : str
        How event times were turned into UTC.
    range_start, range_end : pandas.Timestamp
        The plausible time range: events at ``range_start`` or later and before
        ``range_end`` are kept (``data.time_range``); ``range_rule`` says how it was set.
    excluded_before, excluded_after : int
        Events dropped for a time before ``range_start`` / at or after ``range_end``
        (infinite times and years pandas cannot hold included).
    refunds : int
        Purchases with a negative price, kept as event type ``refund``: they are neither
        conversions nor revenue. ``refund_total`` is the sum of their prices (negative).
    """

    source: str
    format: str
    files: int
    rows_read: int
    rows_kept: int
    duplicates: int
    duplicates_dropped: bool
    null_ids_dropped: int
    unmapped_events: dict[str, int] = field(default_factory=dict)
    first_event: pd.Timestamp | None = None
    last_event: pd.Timestamp | None = None
    users: int = 0
    sessions: int = 0
    sessions_derived: bool = False
    session_gap_minutes: float = 30.0
    time_zone: str = ""
    range_start: pd.Timestamp | None = None
    range_end: pd.Timestamp | None = None
    range_rule: str = ""
    excluded_before: int = 0
    excluded_after: int = 0
    refunds: int = 0
    refund_total: float = 0.0

    def to_frame(self) -> pd.DataFrame:
        """The report as a two-column table (``check``, ``value``) of readable strings."""
        fate = "dropped" if self.duplicates_dropped else "kept (set data.drop_duplicates to drop them)"
        origin = (f"derived: a new session after {self.session_gap_minutes:g} minutes without events"
                  if self.sessions_derived else "as given in the data")
        rows = [
            ("Source", self.source),
            ("Read as", f"{self.format} format, {self.files:,} file{'s' * (self.files != 1)}"),
            ("Events read", f"{self.rows_read:,}"),
            ("Events kept", f"{self.rows_kept:,}"),
            ("Exact duplicate rows", f"{self.duplicates:,}" + (f", {fate}" if self.duplicates else "")),
            ("Rows dropped for a missing user or session id", f"{self.null_ids_dropped:,}"),
            ("Event names outside view/cart/checkout/purchase (kept)",
             "; ".join(f"{k}: {v:,}" for k, v in self.unmapped_events.items()) or "none"),
            ("Time zone", self.time_zone),
            ("First event", _when(self.first_event)),
            ("Last event", _when(self.last_event)),
            ("Time span", "–" if self.first_event is None or self.last_event is None
             else describe_duration(self.last_event - self.first_event)),
            ("Plausible time range", f"{_when(self.range_start)} to {_when(self.range_end)} ({self.range_rule})"
             if self.range_rule else "–"),
            ("Events outside the plausible time range (excluded)", self._excluded_text()),
            ("Refunds (purchases with a negative price)",
             f"{self.refunds:,}, totalling {self.refund_total:,.2f}: kept as event type {EVENTS.refund!r}, "
             "not counted as purchases or revenue" if self.refunds else "none"),
            ("Users", f"{self.users:,}"),
            ("Sessions", f"{self.sessions:,} ({origin})"),
        ]
        return pd.DataFrame(rows, columns=["check", "value"])

    def warnings(self) -> list[str]:
        """What a person should look at before trusting the numbers, one sentence each.

        Events excluded for their time; and a loaded time range that looks like a
        wrong ``data.timestamp_unit`` or time column: times before 1990 or more than
        a year after today, or more than 1,000 events within one minute.
        """
        notes = []
        if self.excluded_before or self.excluded_after:
            total, detail = self._excluded_text().split(": ", 1)
            notes.append(f"{total} events outside the plausible time range ({self.range_rule}) were excluded: "
                         f"{detail}; set data.time_range to keep them or to choose the range")
        if self.first_event is None or self.last_event is None:
            return notes
        span = self.last_event - self.first_event
        odd = []
        if self.first_event < pd.Timestamp("1990-01-01", tz="UTC"):
            odd.append("times before 1990")
        if self.last_event > pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=365):
            odd.append("times more than a year in the future")
        if self.rows_kept > 1000 and span < pd.Timedelta(minutes=1):
            odd.append(f"{self.rows_kept:,} events within {describe_duration(span)}")
        if odd:
            notes.append(f"the loaded times run from {_when(self.first_event)} to {_when(self.last_event)}: "
                         f"{' and '.join(odd)}; check data.timestamp_unit (s, ms or us) and the time column")
        return notes

    def _excluded_text(self) -> str:
        total = self.excluded_before + self.excluded_after
        if not total:
            return "none"
        return (f"{total:,}: {self.excluded_before:,} before {_when(self.range_start)}, "
                f"{self.excluded_after:,} at or after {_when(self.range_end)}")


def _when(ts) -> str:
    return "–" if ts is None else ts.strftime("%Y-%m-%d %H:%M:%S UTC")


def load_events(source, schema: DataParams | None = None, *, con: duckdb.DuckDBPyConnection | None = None,
                engine: EngineParams | None = None) -> EventLog:
    """Read, check and map an event log into a DuckDB table with canonical columns.

    Parameters
    ----------
    source : str or Path
        A ``.csv``, ``.csv.gz`` or ``.parquet`` file, or a folder of files of one kind.
    schema : DataParams, optional
        How to read it (format, mappings, time zone, session gap, duplicate
        and null id policy); default: the canonical format.
    con : duckdb.DuckDBPyConnection, optional
        Where to create the table; default :func:`funnelkit.engines.duckdb.connect` (``engine``).
    engine : EngineParams, optional
        Memory limit and threads of a new connection.

    Returns
    -------
    EventLog
        The table (columns in the module docstring), with its
        :class:`ValidationReport` as ``.report`` and ``str(source)`` as ``.source``.

    Raises
    ------
    DataError
        Missing path, no input files, empty input, unreadable or unusable values.
    SchemaError
        Missing columns, unknown mapping keys, timestamps without a unit or zone.
    """
    schema = schema or DataParams()
    path = Path(source)
    files, kind = input_files(path)
    con = con or connect(engine)
    _check_read_exactly(con, files)
    fmt, label = _FORMATS[schema.format], str(path)
    raw, table = unique_name("_fk_raw"), unique_name("loaded_events")
    try:  # the view over the input goes away whatever happens
        with _wrap_errors(f"{label}: could not be read as {KIND_NAMES[kind]}"):
            con.execute(f"CREATE TEMP VIEW {raw} AS SELECT * FROM {_reader(files, kind)}")
            types = {name: dtype for name, dtype, *_ in con.execute(f"DESCRIBE {raw}").fetchall()}
            empty = not con.execute(f"SELECT 1 FROM {raw} LIMIT 1").fetchall()
        if empty:
            raise DataError(f"{label}: no events (the input has no data rows)")
        src = _map_columns(schema, fmt, types, label)
        if len(files) > 1:
            _check_each_file_has(con, files, kind, path, [src[c] for c in (*COLUMNS.required, COLUMNS.session_id)
                                                          if c in src])
        time_sql, checks, notes = _time_sql(con, src[COLUMNS.event_time], types, schema, fmt, label)
        ids = [c for c in (COLUMNS.user_id, COLUMNS.session_id) if c in src]
        checks.update({f"null {c}": _null_sql(src[c]) for c in ids})
        checks.update(_price_checks(src, types))
        if schema.time_range == "all":  # kept means kept: a time pandas cannot hold is an error, not a crash
            checks["unrepresentable"] = f"NOT ({_within_sql(time_sql, *TIME_LIMITS)})"
        missing_ids = " OR ".join(f"({checks[f'null {c}']})" for c in ids)
        names = {**fmt.events, **schema.event_names}
        merges = {} if schema.merge_event_names else _merge_candidates(names)
        event_text = (literal(schema.event_type) if schema.event_type  # one type for every row: nothing merges
                      else _id_sql(src[COLUMNS.event_type], types))
        raw_names = sorted({name for pair in merges.items() for name in pair})
        # every check in one pass over the input: a large CSV is parsed once here and once to load
        counted = {"rows": "TRUE", **checks, "null ids": missing_ids,
                   **{f"event {name}": f"{event_text} = {literal(name)}" for name in raw_names}}
        keep = f"NOT ({missing_ids})" if schema.null_ids == "drop" else "TRUE"
        time_aggregates = _time_aggregates(schema, keep)
        with _wrap_errors(f"{label}: could not be read as {KIND_NAMES[kind]}"):
            select = ", ".join([f"count(*) FILTER ({c})" for c in counted.values()] + time_aggregates)
            values = con.execute(f"SELECT {select} FROM (SELECT *, {time_sql} AS _fk_t FROM {raw})").fetchall()[0]
        counts = dict(zip(counted, values))
        _raise_first_problem(con, files, kind, path, src, checks, counts, schema)
        _refuse_merges(merges, counts, schema, label, src.get(COLUMNS.event_type, "data.event_type"))
        dropped = counts["null ids"] if schema.null_ids == "drop" else 0
        span = _plausible_range(schema, values[len(counted):])
        if span.excluded >= counts["rows"] - dropped:
            raise DataError(_all_outside_message(label, src[COLUMNS.event_time], counts["rows"] - dropped, span,
                                                 schema.timestamp_unit or fmt.timestamp_unit))

        segments = _segments(schema, fmt, src, types, label)
        select = _select_sql(src, types, fmt, schema, time_sql) + [quote(s) for s in segments]
        where = ([f"NOT ({missing_ids})"] if dropped else []) + ([_within_sql(time_sql, span.start, span.end)]
                                                                 if span.excluded else [])
        body = (f"SELECT {'DISTINCT ' if schema.drop_duplicates else ''}{', '.join(select)} FROM {raw}"
                + (f" WHERE {' AND '.join(where)}" if where else ""))
        derived = COLUMNS.session_id not in src
        present = [c for c in COLUMNS.canonical if c in src or (derived and c == COLUMNS.session_id)
                   or (schema.event_type and c == COLUMNS.event_type)]
        with _wrap_errors(f"{label}: could not be loaded"):
            _create_table(con, table, body, [*present, *segments], schema.session_gap_minutes if derived else None)
    finally:
        con.execute(f"DROP VIEW IF EXISTS {raw}")
    events = EventLog(DuckDBEngine(con), table, segments=tuple(segments), source=label)
    events.report = validation_report(events, label, schema, len(files), counts["rows"], dropped, derived,
                                      "; ".join(note for key, note in notes.items() if counts.get(key)), span)
    return events


def source_fingerprint(path) -> str:
    """A short content hash of a data source (16 hex digits of a SHA-256).

    Covers every input file's path relative to the source, its size and its
    full content (read in 1 MiB chunks): the same on any machine and after a
    copy that changes modification times, different when any byte changes.

    Raises
    ------
    DataError
        If the path does not exist or holds no input files.
    """
    path = Path(path)
    files, _ = input_files(path)
    root = path if path.is_dir() else path.parent
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.relative_to(root).as_posix()}\0{file.stat().st_size}\0".encode())
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def describe_source(params: Params) -> tuple[str, str]:
    """(readable label, fingerprint) of the data a run will use.

    For the simulated shop this generates the dataset when it is not cached
    yet, so that it exists before notebooks start in parallel.

    Raises
    ------
    DataError
        If ``params.data.source`` does not exist or holds no input files.
    """
    if params.simulated:
        from .simulate import ensure_dataset

        return simulated_label(params), ensure_dataset(params.simulation).fingerprint
    if params.data.source is None:  # engine.spark.table: read by Spark only (a JVM to start), so not hashed here
        return f"Spark table {params.engine.spark.table}", ""
    return str(params.data.source), source_fingerprint(params.data.source)


def simulated_label(params: Params) -> str:
    """How reports name the built-in shop of ``params.simulation``."""
    sim = params.simulation
    return f"built-in simulated shop (seed {sim.seed}, {sim.n_users:,} users, {sim.days} days from {sim.start})"


@contextmanager
def _wrap_errors(context: str):
    """Turn DuckDB's reading errors (malformed CSV, bad Parquet) into a one-line DataError."""
    try:
        yield
    except duckdb.Error as exc:
        # DuckDB's first lines say what and where (line, original text); the rest is advice on its own options
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        advice = ("Possible fixes", "The search space", "LINE ")
        stop = next((i for i, line in enumerate(lines) if line.startswith(advice)), 3)
        raise DataError(f"{context}: {'; '.join(lines[:min(stop, 3)])}") from None


def _kind(path: Path) -> str | None:
    name = path.name.lower()
    return next((kind for suffix, kind in _SUFFIXES.items() if name.endswith(suffix)), None)


def input_files(path: Path) -> tuple[list[Path], str]:
    """The input files of a source, sorted by relative path, and their kind ('csv' or 'parquet')."""
    if not path.exists():
        raise DataError(f"data source not found: {path}")
    if path.is_file():
        if _kind(path) is None:
            raise DataError(f"{path}: not a .csv, .csv.gz or .parquet file")
        return [path], _kind(path)
    files = sorted(
        (p for p in path.rglob("*") if p.is_file() and _kind(p)
         and not any(part.startswith((".", "_")) for part in p.relative_to(path).parts)),
        key=lambda p: p.relative_to(path).as_posix())
    if not files:
        raise DataError(f"{path}: the folder holds no .csv, .csv.gz or .parquet files")
    if len({_kind(p) for p in files}) > 1:
        raise DataError(f"{path}: the folder mixes CSV and Parquet files; keep one kind per source folder")
    return files, _kind(files[0])


def _check_each_file_has(con, files: list[Path], kind: str, root: Path, columns: list[str]) -> None:
    """Reading a folder by name fills a column a file lacks with NULLs: name that file instead."""
    for file in files:
        found = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {_reader([file], kind)}").fetchall()]
        lower = {name.lower() for name in found}
        missing = [c for c in columns if c.lower() not in lower]
        if missing:
            raise SchemaError(f"{file.relative_to(root).as_posix()} in {root}: column(s) {missing} not found; "
                              f"columns found: {', '.join(found)}")


def _duckdb_path(file: Path) -> str:
    """How to name ``file`` to DuckDB so that it reads that file only: DuckDB takes every path as a
    glob pattern, so ``*``, ``?`` and ``[`` in a name are escaped as ``[*]``, ``[?]``, ``[[]``."""
    return glob.escape(os.path.abspath(file))


def _check_read_exactly(con, files: list[Path]) -> None:
    """Each input file whose path holds glob characters must be what its escaped name finds, and only it."""
    for file in files:
        text = os.path.abspath(file)
        if not _GLOB_CHARS.search(text):
            continue
        found = [row[0] for row in con.execute("SELECT file FROM glob(?)", [_duckdb_path(file)]).fetchall()]
        if found != [text]:  # e.g. a backslash before a '[': DuckDB's globbing reads it as an escape
            raise DataError(f"{file}: DuckDB cannot read a file under this name (it mixes glob characters "
                            f"*, ? or [ with a backslash); rename the file")


def _reader(files: list[Path], kind: str) -> str:
    names = "[" + ", ".join(literal(_duckdb_path(f)) for f in files) + "]"
    if kind == "csv":
        # all text: ids keep leading zeros, and time zones are detected on the raw strings
        # comma-separated with a header, no rows skipped: left to itself the sniffer may take a ragged
        # last line for the header and silently skip every row above it
        return f"read_csv({names}, all_varchar = true, header = true, delim = ',', skip = 0, union_by_name = true)"
    return f"read_parquet({names}, union_by_name = true)"


def _map_columns(schema: DataParams, fmt: _Format, types: dict, label: str) -> dict[str, str]:
    """Canonical name -> source column, for the columns present; SchemaError when a required one is missing."""
    unknown = sorted(set(schema.columns) - set(COLUMNS.canonical))
    if unknown:
        raise SchemaError(f"data.columns: unknown canonical column(s) {unknown}; expected some of "
                          f"{list(COLUMNS.canonical)}")
    by_lower = {name.lower(): name for name in types}
    mapping, present = {**fmt.columns, **schema.columns}, {}
    for canon in COLUMNS.canonical:
        wanted = mapping.get(canon)
        actual = wanted if wanted in types else by_lower.get((wanted or "").lower())
        if canon == COLUMNS.event_type and schema.event_type:  # one event type for every row
            if actual:
                raise SchemaError(f"{label}: data.event_type {schema.event_type!r} is for a log without an event "
                                  f"type column, but column {actual!r} is one; remove data.event_type")
        elif actual:
            present[canon] = actual
        elif canon in COLUMNS.required or canon in schema.columns:
            what = "required column" if canon in COLUMNS.required else "column"
            raise SchemaError(
                f"{label}: {what} {canon!r} not found: format {schema.format!r} reads it from column {wanted!r}; "
                f"columns found: {', '.join(types)}. Map it with data.columns: {{{canon}: <column>}}"
                + (" or, for a log without event types (ratings, orders), give every row one with "
                   "data.event_type: <type>." if canon == COLUMNS.event_type else "."))
    return present


def _segments(schema: DataParams, fmt: _Format, src: dict, types: dict, label: str) -> list[str]:
    if schema.segments is None:
        used = set(src.values()) | {fmt.category_fallback}
        return [c for c in types if c not in used and c not in fmt.ignored and c not in COLUMNS.canonical
                and not _PANDAS_INDEX.fullmatch(c)]
    for name in schema.segments:
        if name not in types:
            raise SchemaError(f"{label}: segment column {name!r} (data.segments) not found; columns found: "
                              f"{', '.join(types)}")
        if name in COLUMNS.canonical:
            raise SchemaError(f"data.segments: {name!r} is a canonical column, not a segment")
    return list(dict.fromkeys(schema.segments))


def _time_sql(con, column: str, types: dict, schema: DataParams, fmt: _Format, label: str):
    """SQL giving the UTC TIMESTAMPTZ, {check: condition on bad rows}, {count key: note for the report}."""
    col, dtype = quote(column), types[column]
    unit, tz = schema.timestamp_unit or fmt.timestamp_unit, schema.assume_timezone
    if tz is not None:
        try:
            con.execute(f"SELECT timezone({literal(tz)}, TIMESTAMP '2000-01-01')")
        except duckdb.Error:
            raise SchemaError(f"data.assume_timezone: unknown time zone {tz!r}; use an IANA name such as "
                              f"'UTC' or 'Europe/Berlin'") from None
    # TRY_CAST: a number beyond 64-bit microseconds is unparsable rather than an overflow error
    epoch = (f"timezone('UTC', make_timestamp(TRY_CAST(round(TRY_CAST({col} AS DOUBLE) * {_EPOCH_US[unit]}) "
             f"AS BIGINT)))" if unit else "NULL")
    naive = f"timezone({literal(tz)}, TRY_CAST({col} AS TIMESTAMP))" if tz else "NULL"
    missing = {"timestamp": f"{col} IS NULL"}
    if "TIME ZONE" in dtype or dtype.startswith("TIMESTAMPTZ"):  # e.g. TIMESTAMPTZ_NS from pandas: to µs
        return f"CAST({col} AS TIMESTAMPTZ)", missing, {"rows": "stored with a time zone, converted to UTC"}
    if dtype.startswith("TIMESTAMP") or dtype == "DATE":
        if tz is None:
            raise SchemaError(f"{label}: column {column!r} holds times without a time zone; set "
                              f"data.assume_timezone (e.g. UTC or Europe/Berlin) to the zone they were recorded in")
        return naive, missing, {"rows": f"no zone in the data; read as {tz}"}
    if dtype.startswith(NUMERIC_TYPES):
        if unit is None:
            raise SchemaError(f"{label}: column {column!r} holds numbers; set data.timestamp_unit "
                              f"(s, ms or us) to the unit of these epoch timestamps")
        return epoch, missing, {"rows": f"epoch {unit} (UTC)"}
    if dtype != "VARCHAR":
        raise SchemaError(f"{label}: column {column!r} has type {dtype}, which is not a timestamp")
    # DuckDB would read a naive string in the session zone without a word: classify the raw strings first
    is_number = f"regexp_full_match(trim({col}), {literal(_NUMBER_RE)})"
    is_zoned = f"NOT regexp_full_match(trim({col}), {literal(_NAIVE_RE)})"
    sql = (f"CASE WHEN {is_number} THEN {epoch} WHEN {is_zoned} THEN TRY_CAST(trim({col}) AS TIMESTAMPTZ) "
           f"ELSE {naive} END")
    checks = {
        "number": is_number,
        "zoned": f"{is_zoned} AND NOT {is_number} AND TRY_CAST(trim({col}) AS TIMESTAMPTZ) IS NOT NULL",
        # naive: readable without a zone; anything else is simply unparsable
        "naive": f"NOT ({is_zoned}) AND NOT {is_number} AND TRY_CAST(trim({col}) AS TIMESTAMP) IS NOT NULL",
        "timestamp": f"({sql}) IS NULL",
    }
    notes = {"number": f"epoch {unit} (UTC)", "zoned": "times carry a zone or offset, converted to UTC",
             "naive": f"no zone in the data; read as {tz}"}
    return sql, checks, notes


def _null_sql(column: str) -> str:
    return f"{quote(column)} IS NULL OR trim(CAST({quote(column)} AS VARCHAR)) = ''"


def _id_sql(column: str, types: dict) -> str:
    # a float id column (integers with gaps, as pandas writes them) would otherwise read '123.0'
    if types[column] in ("FLOAT", "DOUBLE"):
        return f"CAST(CAST({quote(column)} AS BIGINT) AS VARCHAR)"
    return f"CAST({quote(column)} AS VARCHAR)"


def _select_sql(src: dict, types: dict, fmt: _Format, schema: DataParams, time_sql: str) -> list[str]:
    """The canonical columns as SQL expressions over the source columns, in canonical order."""
    exprs = {canon: _id_sql(column, types) for canon, column in src.items()}
    if COLUMNS.session_id in src and fmt.session_per_user:
        exprs[COLUMNS.session_id] = f"{exprs[COLUMNS.user_id]} || ':' || {exprs[COLUMNS.session_id]}"
    exprs[COLUMNS.event_time] = time_sql
    if schema.event_type:
        exprs[COLUMNS.event_type] = literal(schema.event_type)
    names = {**fmt.events, **schema.event_names}
    if names:
        text = exprs[COLUMNS.event_type]
        cases = " ".join(f"WHEN {literal(k)} THEN {literal(v)}" for k, v in names.items())
        exprs[COLUMNS.event_type] = f"CASE {text} {cases} ELSE {text} END"
    if COLUMNS.category in src and fmt.category_fallback in types and COLUMNS.category not in schema.columns:
        fallback = _id_sql(fmt.category_fallback, types)
        exprs[COLUMNS.category] = f"coalesce(nullif(trim({exprs[COLUMNS.category]}), ''), {fallback})"
    if COLUMNS.price in src:
        price = exprs[COLUMNS.price] = f"TRY_CAST({quote(src[COLUMNS.price])} AS DOUBLE)"
        kind = exprs[COLUMNS.event_type]
        # a purchase with a negative price gives money back: not a conversion, not revenue
        exprs[COLUMNS.event_type] = (f"CASE WHEN ({kind}) = {literal(EVENTS.purchase)} AND {price} < 0 "
                                     f"THEN {literal(EVENTS.refund)} ELSE {kind} END")
    return [f"{exprs[c]} AS {quote(c)}" for c in COLUMNS.canonical if c in exprs]


def _first_row(con, files, kind, root: Path, condition: str, column: str) -> tuple[str, str]:
    """(where, raw value) of the first row matching ``condition``, file by file (run only on errors)."""
    for file in files:
        try:
            hit = con.execute(
                f"SELECT _fk_row, CAST({quote(column)} AS VARCHAR) FROM (SELECT row_number() OVER () AS _fk_row, * "
                f"FROM {_reader([file], kind)}) WHERE {condition} ORDER BY _fk_row LIMIT 1").fetchall()
        except duckdb.Error:  # e.g. this file of a folder lacks the column
            continue
        hit = hit[0] if hit else None
        if hit:
            name = f"{file.relative_to(root).as_posix()} " if root.is_dir() else ""
            line = f" (line {hit[0] + 1})" if kind == "csv" else ""
            return f"{name}row {hit[0]:,}{line}", "an empty value" if hit[1] is None else repr(hit[1])
    return "an unknown row", "an unknown value"


def _raise_first_problem(con, files, kind, path, src, checks, counts, schema: DataParams) -> None:
    """Raise for the first failed check, with its count and first offending row."""
    time = src[COLUMNS.event_time]
    zone_hint = "; set data.assume_timezone (e.g. UTC or Europe/Berlin) to the zone they were recorded in"
    problems = []  # (count key, column, error class, what, hint), in the order a person should fix them
    if not (schema.timestamp_unit or _FORMATS[schema.format].timestamp_unit):
        problems.append(("number", time, SchemaError, "timestamps are epoch numbers",
                         "; set data.timestamp_unit (s, ms or us) to their unit"))
    if counts.get("zoned"):
        problems.append(("naive", time, DataError, f"times have no zone while {counts['zoned']:,} have one "
                         "(mixed time zones)", "; write every time with its zone or offset"))
    elif schema.assume_timezone is None:
        problems.append(("naive", time, SchemaError, "times have no time zone", zone_hint))
    problems.append(("timestamp", time, DataError, "timestamps cannot be parsed", ""))
    problems.append(("unrepresentable", time, DataError,
                     f"timestamps are outside {_when(TIME_LIMITS[0])} to {_when(TIME_LIMITS[1])} (what pandas can "
                     "hold)", "; set data.time_range to auto (or to {start, end}) to exclude them"))
    if schema.null_ids == "error":
        problems += [(f"null {c}", src[c], DataError, f"rows have no {c}", "; set data.null_ids: drop to drop them")
                     for c in (COLUMNS.user_id, COLUMNS.session_id) if c in src]
    problems.append(("price", src.get(COLUMNS.price), DataError, "prices are not numbers", ""))
    problems.append(("price not finite", src.get(COLUMNS.price), DataError, "prices are not finite numbers",
                     "; write a number, or leave the price empty when there is none"))
    for key, column, error, what, hint in problems:
        if counts.get(key):
            where, value = _first_row(con, files, kind, path, checks[key], column)
            raise error(f"{path}: column {column!r}: {counts[key]:,} {what}; first at {where}: {value}{hint}")


def _price_checks(src: dict, types: dict) -> dict[str, str]:
    """Conditions on bad price rows: not a number (text columns), not finite (inf, nan)."""
    if COLUMNS.price not in src:
        return {}
    price = quote(src[COLUMNS.price])
    checks = {"price not finite": f"NOT isfinite(TRY_CAST({price} AS DOUBLE))"}
    if types[src[COLUMNS.price]] == "VARCHAR":
        checks["price"] = f"trim({price}) <> '' AND TRY_CAST({price} AS DOUBLE) IS NULL"
    return checks


def _merge_candidates(names: dict[str, str]) -> dict[str, str]:
    """Mappings ``raw -> target`` whose target is also a name the log's own events keep (not mapped away)."""
    return {raw: target for raw, target in names.items() if raw != target and names.get(target, target) == target}


def _refuse_merges(merges: dict, counts: dict, schema: DataParams, label: str, column: str) -> None:
    """A mapping onto a name the log already holds merges two kinds of events without a word: refuse it."""
    found = [(raw, target) for raw, target in merges.items() if counts[f"event {raw}"] and counts[f"event {target}"]]
    if not found:
        return

    def events(name):
        return f"{counts[f'event {name}']:,} event{'s' * (counts[f'event {name}'] != 1)}"

    pairs = "; ".join(
        f"{'data.event_names' if raw in schema.event_names else f'format {schema.format!r}'} maps {raw!r} "
        f"({events(raw)}) to {target!r}, a name the log already holds: its own {target!r} ({events(target)}) "
        f"would be counted as the same event" for raw, target in found)
    target = found[0][1]
    raise SchemaError(f"{label}: column {column!r}: {pairs}. Rename the log's own events (e.g. data.event_names: "
                      f"{{{target}: {target}_page}}), or set data.merge_event_names: true to merge them")


@dataclass(frozen=True)
class _Span:
    """The plausible time range [start, end) of a load, and the events found outside it."""

    start: pd.Timestamp
    end: pd.Timestamp
    rule: str
    before: int = 0
    after: int = 0
    first: str | None = None  # the loaded extremes as DuckDB writes them (they may be beyond pandas)
    last: str | None = None

    @property
    def excluded(self) -> int:
        return self.before + self.after


def _fixed_bounds(schema: DataParams) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The range known before reading: ``data.time_range``'s bounds within what pandas can hold."""
    start, end = TIME_LIMITS
    if isinstance(schema.time_range, str):
        return start, end
    given = schema.time_range
    return (max(start, pd.Timestamp(given.start)) if given.start else start,
            min(end, pd.Timestamp(given.end)) if given.end else end)


def _within_sql(time_sql: str, start: pd.Timestamp, end: pd.Timestamp) -> str:
    return f"({time_sql}) >= {timestamp_literal(start)} AND ({time_sql}) < {timestamp_literal(end)}"


def _time_aggregates(schema: DataParams, keep: str) -> list[str]:
    """Aggregates over the parsed time ``_fk_t`` of the rows to ``keep``, for :func:`_plausible_range`:
    events before and after the fixed bounds, the first and last time, and (``auto``) events per day."""
    start, end = (timestamp_literal(bound) for bound in _fixed_bounds(schema))
    t = "_fk_t"
    aggregates = [f"count(*) FILTER ({keep} AND {t} < {start})", f"count(*) FILTER ({keep} AND {t} >= {end})",
                  f"CAST(min({t}) FILTER ({keep}) AS VARCHAR)", f"CAST(max({t}) FILTER ({keep}) AS VARCHAR)"]
    if schema.time_range == "auto":  # a count per day: exact quantiles whatever the log's size, in little memory
        day = f"CAST(floor(epoch_us({t}) / {US_PER_DAY}) AS BIGINT)"
        aggregates.append(f"histogram({day}) FILTER ({keep} AND {t} >= {start} AND {t} < {end})")
    return aggregates


def _plausible_range(schema: DataParams, values) -> _Span:
    """The range of times kept, from :func:`_time_aggregates`' values.

    ``auto``: the bulk of the log runs from the day of its 5th percentile to the day of its
    95th; it is widened on each side by its own length, at least :data:`AUTO_MARGIN_DAYS`.
    A normal log loses nothing (even one whose traffic grows like t³ over a year); a lone
    event years away, or at an epoch-0 default, is excluded.
    """
    before, after, first, last, *histogram = values
    start, end = _fixed_bounds(schema)
    if schema.time_range != "auto" or not histogram[0]:  # explicit bounds, all, or no time pandas can hold
        rule = ("data.time_range" if not isinstance(schema.time_range, str)
                else "all: every time pandas can hold" if schema.time_range == "all" else "the times pandas can hold")
        return _Span(start, end, rule, before, after, first, last)
    days, counts = zip(*sorted(histogram[0].items()))
    cumulative = np.cumsum(counts)
    low, high = (days[int(np.searchsorted(cumulative, q * cumulative[-1]))] for q in (0.05, 0.95))
    margin = max(high - low + 1, AUTO_MARGIN_DAYS)
    limit_low, limit_high = (bound.value // (US_PER_DAY * 1000) for bound in TIME_LIMITS)
    first_day, end_day = max(low - margin, limit_low), min(high + 1 + margin, limit_high)
    before += sum(n for day, n in zip(days, counts) if day < first_day)
    after += sum(n for day, n in zip(days, counts) if day >= end_day)
    return _Span(*(pd.Timestamp(day * US_PER_DAY, unit="us", tz="UTC") for day in (first_day, end_day)),
                 "auto: the bulk of the log widened by its span", int(before), int(after), first, last)


def _all_outside_message(label: str, column: str, n: int, span: _Span, unit: str | None) -> str:
    hint = "; check data.timestamp_unit (s, ms or us)" if unit else ""
    return (f"{label}: column {column!r}: all {n:,} events are outside {span.rule} ({_when(span.start)} to "
            f"{_when(span.end)}): the loaded times run from {span.first} to {span.last}{hint}")


def _create_table(con, table: str, body: str, columns: list[str], gap_minutes: float | None) -> None:
    """Materialise ``body`` ordered by user and time, deriving sessions when ``gap_minutes`` is given."""
    user, time = quote(COLUMNS.user_id), quote(COLUMNS.event_time)
    if gap_minutes is not None:
        gap_us = round(gap_minutes * US_PER_MINUTE)
        window = f"OVER (PARTITION BY {user} ORDER BY {time})"
        previous = f"lag(epoch_us({time})) {window}"
        flagged = (f"SELECT *, CASE WHEN {previous} IS NULL OR epoch_us({time}) - {previous} > {gap_us} "
                   f"THEN 1 ELSE 0 END AS _fk_new FROM ({body})")
        # the default RANGE frame gives simultaneous events one session number whatever their order
        body = (f"SELECT *, {user} || ':' || CAST(sum(_fk_new) {window} AS VARCHAR) AS {quote(COLUMNS.session_id)} "
                f"FROM ({flagged})")
    selected = ", ".join(quote(c) for c in columns)
    con.execute(f"CREATE TABLE {table} AS SELECT {selected} FROM ({body}) ORDER BY {user}, {time}")


def _duplicates_sql(table: str, columns: list[str]) -> str:
    """The number of rows of ``table`` that repeat an earlier row exactly (``count(*)`` minus the distinct rows).

    Only rows sharing their user and time with another row can be copies, and they are few: grouping the
    table by those two columns first, then comparing whole rows among the few, takes 1.5-2.7 s at 15M events where
    ``SELECT DISTINCT *`` over every row took 7 s. NULLs compare equal, as in DISTINCT.
    """
    user, time = quote(COLUMNS.user_id), quote(COLUMNS.event_time)
    whole_row = ", ".join(f"e.{quote(c)}" for c in columns)
    return (f"WITH shared AS (SELECT {user} AS u, {time} AS t FROM {table} GROUP BY 1, 2 HAVING count(*) > 1) "
            f"SELECT coalesce(sum(copies - 1), 0) FROM (SELECT count(*) AS copies FROM {table} AS e JOIN shared AS s "
            f"ON e.{user} IS NOT DISTINCT FROM s.u AND e.{time} IS NOT DISTINCT FROM s.t GROUP BY {whole_row}) "
            f"AS copies_of_each_row")


def validation_report(events: EventLog, label, schema, files, rows_read, dropped, derived, time_note,
                      span: "_Span | None" = None) -> ValidationReport:
    """The :class:`ValidationReport` of loaded ``events``: counts computed by their engine, the rest as given.

    ``rows_read`` None: as many as kept (nothing was dropped on the way); ``span`` None: no
    plausible-time rule was applied.
    """
    t, time, kind = quote(events.table), quote(COLUMNS.event_time), quote(COLUMNS.event_type)
    price = quote(COLUMNS.price)
    refund = (f"sum(CASE WHEN {kind} = {literal(EVENTS.refund)} AND {price} < 0 THEN {{}} ELSE 0 END)"
              if COLUMNS.price in events.columns else "0")
    # times as integer microseconds: every engine returns those the same way
    rows, first, last, users, sessions, refunds, refund_total = events.rows(
        f"SELECT count(*), epoch_us(min({time})), epoch_us(max({time})), count(DISTINCT {quote(COLUMNS.user_id)}), "
        f"count(DISTINCT {quote(COLUMNS.session_id)}), {refund.format(1)}, {refund.format(price)} FROM {t}")[0]
    excluded = span.excluded if span else 0
    if schema.drop_duplicates:
        duplicates = rows_read - dropped - excluded - rows
    else:  # a derived session id depends on user and time only, so duplicates stay duplicates
        duplicates = events.rows(_duplicates_sql(t, events.columns))[0][0]
    known = ", ".join(literal(e) for e in EVENTS.funnel)
    unmapped = events.rows(
        f"SELECT coalesce({kind}, '(missing)') AS kind, count(*) AS n FROM {t} "
        f"WHERE {kind} IS NULL OR {kind} NOT IN ({known}) GROUP BY 1 ORDER BY n DESC, 1")
    utc = lambda value: None if value is None else pd.Timestamp(int(value), unit="us", tz="UTC")  # noqa: E731
    return ValidationReport(
        source=label, format=schema.format, files=files, rows_read=rows_read if rows_read is not None else rows,
        duplicates=duplicates, duplicates_dropped=schema.drop_duplicates, null_ids_dropped=dropped,
        unmapped_events=dict(unmapped), first_event=utc(first), last_event=utc(last), users=users,
        sessions=sessions, sessions_derived=derived, session_gap_minutes=schema.session_gap_minutes,
        time_zone=time_note, rows_kept=rows, refunds=int(refunds or 0), refund_total=float(refund_total or 0),
        **({} if span is None else {"range_start": span.start, "range_end": span.end, "range_rule": span.rule,
                                    "excluded_before": span.before, "excluded_after": span.after}))
