"""Load an event log into DuckDB in the canonical schema, checking it on the way.

Formats
-------
A source is a CSV, gzipped CSV (``.csv.gz``) or Parquet file, or a folder
holding files of one of these kinds (searched recursively; names starting
with ``.`` or ``_``, such as ``_SUCCESS``, are skipped). DuckDB reads the
files and the events never leave it; the input files are only read.

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
as segments (null keeps every column not used otherwise).

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
unparsable prices. Exact duplicate rows are counted and dropped only with
``drop_duplicates``. Event names outside view/cart/checkout/purchase are
kept under their raw name and counted in the :class:`ValidationReport`.
"""
from __future__ import annotations

import hashlib
import itertools
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from .errors import DataError, ParamsError, SchemaError
from .eventlog import EventLog, connect, literal, quote
from .params import DataParams, EngineParams, Params
from .schema import COLUMNS, EVENTS

_names = itertools.count()
_SUFFIXES = {".csv.gz": "csv", ".csv": "csv", ".parquet": "parquet"}
_KIND_NAMES = {"csv": "comma-separated CSV with a header row", "parquet": "Parquet"}
_EPOCH_US = {"s": 1_000_000, "ms": 1_000, "us": 1}
_NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                  "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL")
# a date or date-time and nothing after it: a time without a zone. Anything else (Z, +02:00, UTC,
# EST, America/Argentina/Buenos_Aires, ...) is read as zoned; what DuckDB cannot read is unparsable.
_NAIVE_RE = r"\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d\d(:\d\d(\.\d+)?)?)?"
_NUMBER_RE = r"-?\d+(\.\d*)?"


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

    def to_frame(self) -> pd.DataFrame:
        """The report as a two-column table (``check``, ``value``) of readable strings."""
        def when(ts):
            return "–" if ts is None else ts.strftime("%Y-%m-%d %H:%M:%S UTC")

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
            ("First event", when(self.first_event)),
            ("Last event", when(self.last_event)),
            ("Users", f"{self.users:,}"),
            ("Sessions", f"{self.sessions:,} ({origin})"),
        ]
        return pd.DataFrame(rows, columns=["check", "value"])


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
        Where to create the table; default :func:`funnelkit.eventlog.connect` (``engine``).
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
    files, kind = _input_files(path)
    con = con or connect(engine)
    fmt, label, n = _FORMATS[schema.format], str(path), next(_names)
    raw, table = f"_fk_raw_{n}", f"loaded_events_{n}"
    try:  # the view over the input goes away whatever happens
        with _wrap_errors(f"{label}: could not be read as {_KIND_NAMES[kind]}"):
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
        if COLUMNS.price in src and types[src[COLUMNS.price]] == "VARCHAR":
            price = quote(src[COLUMNS.price])
            checks["price"] = f"trim({price}) <> '' AND TRY_CAST({price} AS DOUBLE) IS NULL"
        missing_ids = " OR ".join(f"({checks[f'null {c}']})" for c in ids)
        # every check in one pass over the input: a large CSV is parsed once here and once to load
        counted = {"rows": "TRUE", **checks, "null ids": missing_ids}
        with _wrap_errors(f"{label}: could not be read as {_KIND_NAMES[kind]}"):
            values = con.execute(f"SELECT {', '.join(f'count(*) FILTER ({c})' for c in counted.values())} FROM {raw}")
            counts = dict(zip(counted, values.fetchall()[0]))
        _raise_first_problem(con, files, kind, path, src, checks, counts, schema)
        dropped = counts["null ids"] if schema.null_ids == "drop" else 0

        segments = _segments(schema, fmt, src, types, label)
        select = _select_sql(src, types, fmt, schema, time_sql) + [quote(s) for s in segments]
        body = (f"SELECT {'DISTINCT ' if schema.drop_duplicates else ''}{', '.join(select)} FROM {raw}"
                + (f" WHERE NOT ({missing_ids})" if dropped else ""))
        derived = COLUMNS.session_id not in src
        present = [c for c in COLUMNS.canonical if c in src or (derived and c == COLUMNS.session_id)]
        with _wrap_errors(f"{label}: could not be loaded"):
            _create_table(con, table, body, [*present, *segments], schema.session_gap_minutes if derived else None)
    finally:
        con.execute(f"DROP VIEW IF EXISTS {raw}")
    events = EventLog(con, table, segments=tuple(segments), source=label)
    events.report = _report(events, label, schema, len(files), counts["rows"], dropped, derived,
                            "; ".join(note for key, note in notes.items() if counts.get(key)))
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
    files, _ = _input_files(path)
    root = path if path.is_dir() else path.parent
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.relative_to(root).as_posix()}\0{file.stat().st_size}\0".encode())
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def load_from_params(params: Params) -> EventLog:
    """The events a run analyses: ``params.data.source``, or the built-in simulated shop when it is null.

    With ``engine.name: spark`` the events are read by Spark (:func:`load_spark_events`).
    """
    if params.engine.name == "spark":
        return load_spark_events(params)
    if params.data.source is None:
        from .simulate import ensure_dataset  # late: only needed without data of one's own

        dataset = ensure_dataset(params.simulation)
        events = load_events(dataset.events_path, DataParams(format="canonical"), engine=params.engine)
        events.source = events.report.source = _simulated_label(params)
        return events
    return load_events(params.data.source, params.data, engine=params.engine)


def load_spark_events(params: Params) -> EventLog:
    """The events of a run on the Spark engine, read by Spark and left there.

    The source is ``engine.spark.table`` (a table of the session), or canonical Parquet:
    ``data.source`` or the built-in shop. Spark reads the files in place, so the checks
    :func:`load_events` makes on the way into DuckDB (and its format adapters) do not
    apply: convert other formats to canonical Parquet first (load them with DuckDB and
    ``COPY ... TO 'events.parquet'``). The validation report is computed in Spark.

    Raises
    ------
    ParamsError
        ``data.format`` is not ``canonical`` or the source is not Parquet.
    SchemaError
        Required columns are missing.
    """
    from .spark import SparkEventLog, spark_session  # late: PySpark is an optional extra

    spark_params = params.engine.spark
    if spark_params.table is None:
        if params.data.format != "canonical":
            raise ParamsError(f"engine spark reads canonical Parquet; data.format is {params.data.format!r}: "
                              "convert the data to canonical Parquet first, or use engine duckdb")
        if params.data.source is None:
            from .simulate import ensure_dataset

            path, label, files = ensure_dataset(params.simulation).events_path, _simulated_label(params), 1
        else:
            found, kind = _input_files(Path(params.data.source))
            if kind != "parquet":
                raise ParamsError(f"engine spark reads Parquet; {params.data.source} holds {_KIND_NAMES[kind]}")
            path, label, files = params.data.source, str(params.data.source), len(found)
    spark = spark_session(spark_params.master, {k: str(v) for k, v in spark_params.options.items()})
    if spark_params.table is None:
        events = SparkEventLog.from_parquet(path, spark)
    else:
        events, label, files = SparkEventLog.from_table(spark, spark_params.table), spark_params.table, 0
    events.source = label
    events.report = _report(events, label, params.data, files, None, 0, False, "as stored (UTC)")
    return events


def describe_source(params: Params) -> tuple[str, str]:
    """(readable label, fingerprint) of the data a run will use.

    For the simulated shop this generates the dataset when it is not cached
    yet, so that it exists before notebooks start in parallel.

    Raises
    ------
    DataError
        If ``params.data.source`` does not exist or holds no input files.
    """
    if params.data.source is None:
        from .simulate import ensure_dataset

        return _simulated_label(params), ensure_dataset(params.simulation).fingerprint
    return str(params.data.source), source_fingerprint(params.data.source)


def _simulated_label(params: Params) -> str:
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


def _input_files(path: Path) -> tuple[list[Path], str]:
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


def _reader(files: list[Path], kind: str) -> str:
    names = "[" + ", ".join(literal(str(f)) for f in files) + "]"
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
        if actual:
            present[canon] = actual
        elif canon in COLUMNS.required or canon in schema.columns:
            what = "required column" if canon in COLUMNS.required else "column"
            raise SchemaError(
                f"{label}: {what} {canon!r} not found: format {schema.format!r} reads it from column {wanted!r}; "
                f"columns found: {', '.join(types)}. Map it with data.columns: {{{canon}: <column>}}.")
    return present


def _segments(schema: DataParams, fmt: _Format, src: dict, types: dict, label: str) -> list[str]:
    if schema.segments is None:
        used = set(src.values()) | {fmt.category_fallback}
        return [c for c in types if c not in used and c not in fmt.ignored and c not in COLUMNS.canonical]
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
    epoch = (f"timezone('UTC', make_timestamp(CAST(round(TRY_CAST({col} AS DOUBLE) * {_EPOCH_US[unit]}) AS BIGINT)))"
             if unit else "NULL")
    naive = f"timezone({literal(tz)}, TRY_CAST({col} AS TIMESTAMP))" if tz else "NULL"
    missing = {"timestamp": f"{col} IS NULL"}
    if "TIME ZONE" in dtype or dtype.startswith("TIMESTAMPTZ"):  # e.g. TIMESTAMPTZ_NS from pandas: to µs
        return f"CAST({col} AS TIMESTAMPTZ)", missing, {"rows": "stored with a time zone, converted to UTC"}
    if dtype.startswith("TIMESTAMP") or dtype == "DATE":
        if tz is None:
            raise SchemaError(f"{label}: column {column!r} holds times without a time zone; set "
                              f"data.assume_timezone (e.g. UTC or Europe/Berlin) to the zone they were recorded in")
        return naive, missing, {"rows": f"no zone in the data; read as {tz}"}
    if dtype.startswith(_NUMERIC_TYPES):
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
    names = {**fmt.events, **schema.event_names}
    if names:
        text = exprs[COLUMNS.event_type]
        cases = " ".join(f"WHEN {literal(k)} THEN {literal(v)}" for k, v in names.items())
        exprs[COLUMNS.event_type] = f"CASE {text} {cases} ELSE {text} END"
    if COLUMNS.category in src and fmt.category_fallback in types and COLUMNS.category not in schema.columns:
        fallback = _id_sql(fmt.category_fallback, types)
        exprs[COLUMNS.category] = f"coalesce(nullif(trim({exprs[COLUMNS.category]}), ''), {fallback})"
    if COLUMNS.price in src:
        exprs[COLUMNS.price] = f"TRY_CAST({quote(src[COLUMNS.price])} AS DOUBLE)"
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
    if schema.null_ids == "error":
        problems += [(f"null {c}", src[c], DataError, f"rows have no {c}", "; set data.null_ids: drop to drop them")
                     for c in (COLUMNS.user_id, COLUMNS.session_id) if c in src]
    problems.append(("price", src.get(COLUMNS.price), DataError, "prices are not numbers", ""))
    for key, column, error, what, hint in problems:
        if counts.get(key):
            where, value = _first_row(con, files, kind, path, checks[key], column)
            raise error(f"{path}: column {column!r}: {counts[key]:,} {what}; first at {where}: {value}{hint}")


def _create_table(con, table: str, body: str, columns: list[str], gap_minutes: float | None) -> None:
    """Materialise ``body`` ordered by user and time, deriving sessions when ``gap_minutes`` is given."""
    user, time = quote(COLUMNS.user_id), quote(COLUMNS.event_time)
    if gap_minutes is not None:
        gap_us = round(gap_minutes * 60_000_000)
        window = f"OVER (PARTITION BY {user} ORDER BY {time})"
        previous = f"lag(epoch_us({time})) {window}"
        flagged = (f"SELECT *, CASE WHEN {previous} IS NULL OR epoch_us({time}) - {previous} > {gap_us} "
                   f"THEN 1 ELSE 0 END AS _fk_new FROM ({body})")
        # the default RANGE frame gives simultaneous events one session number whatever their order
        body = (f"SELECT *, {user} || ':' || CAST(sum(_fk_new) {window} AS VARCHAR) AS {quote(COLUMNS.session_id)} "
                f"FROM ({flagged})")
    selected = ", ".join(quote(c) for c in columns)
    con.execute(f"CREATE TABLE {table} AS SELECT {selected} FROM ({body}) ORDER BY {user}, {time}")


def _report(events: EventLog, label, schema, files, rows_read, dropped, derived, time_note) -> ValidationReport:
    t, time, kind = quote(events.table), quote(COLUMNS.event_time), quote(COLUMNS.event_type)
    # times as integer microseconds: every engine returns those the same way
    rows, first, last, users, sessions = events.rows(
        f"SELECT count(*), epoch_us(min({time})), epoch_us(max({time})), count(DISTINCT {quote(COLUMNS.user_id)}), "
        f"count(DISTINCT {quote(COLUMNS.session_id)}) FROM {t}")[0]
    if schema.drop_duplicates:
        duplicates = rows_read - dropped - rows
    else:  # a derived session id depends on user and time only, so duplicates stay duplicates
        duplicates = rows - events.rows(f"SELECT count(*) FROM (SELECT DISTINCT * FROM {t}) AS d")[0][0]
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
        time_zone=time_note, rows_kept=rows)
