"""The parameter schema: every key a params file accepts, its type, default and meaning.

A params file is YAML read with a safe loader and validated here before any
notebook starts. Unknown or misspelled keys and wrong types stop the run with
a :class:`~funnelkit.errors.ParamsError` naming the file, the key and what is
accepted (papermill alone would only warn).

Relative paths in a params file are resolved against the directory of that
file, so ``params/default.yaml`` may say ``cache_dir: ../data/simulated``.
"""
from __future__ import annotations

import datetime as dt
import math
import reprlib
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import pandas as pd
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    model_validator,
)

from .errors import ParamsError
from .schema import EVENTS, US_PER_DAY, US_PER_HOUR, US_PER_MILLISECOND, US_PER_MINUTE, US_PER_SECOND


def _parse_duration(value: Any) -> dt.timedelta:
    """Accept '7D', '30min', '48h', '1 day' (pandas Timedelta syntax) or a timedelta."""
    if isinstance(value, dt.timedelta):
        return value
    if isinstance(value, str):
        try:
            parsed = pd.Timedelta(value)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"expected a duration such as '7D', '48h' or '30min', got {value!r}") from exc
        if pd.isna(parsed) or parsed <= pd.Timedelta(0):
            raise ValueError(f"expected a positive duration, got {value!r}")
        return parsed.to_pytimedelta()
    raise ValueError(f"expected a duration string such as '7D', got {type(value).__name__} {value!r}")


Duration = Annotated[
    dt.timedelta,
    BeforeValidator(_parse_duration),
    PlainSerializer(lambda td: _format_duration(td), return_type=str),
]


def _format_duration(td: dt.timedelta) -> str:
    """The largest whole unit that represents ``td`` exactly, so that parsing it back gives ``td``."""
    micros = td // dt.timedelta(microseconds=1)
    for unit, size in (("D", US_PER_DAY), ("h", US_PER_HOUR), ("min", US_PER_MINUTE), ("s", US_PER_SECOND),
                       ("ms", US_PER_MILLISECOND)):
        if micros % size == 0:
            return f"{micros // size}{unit}"
    return f"{micros}us"


def describe_duration(td: dt.timedelta) -> str:
    """A duration in words for people: ``7 minutes``, ``1 day 12 hours``, ``1.5 seconds``.

    Parameters
    ----------
    td : datetime.timedelta or pandas.Timedelta

    Returns
    -------
    str
        Days, hours, minutes and seconds that are not zero, largest first (fractions of a
        second as a decimal); ``0 seconds`` for zero and a leading ``minus`` for negatives.
    """
    micros = int(pd.Timedelta(td) // pd.Timedelta(microseconds=1))
    sign, micros = ("minus ", -micros) if micros < 0 else ("", micros)
    parts = []
    for unit, size in (("day", US_PER_DAY), ("hour", US_PER_HOUR), ("minute", US_PER_MINUTE)):
        count, micros = divmod(micros, size)
        if count:
            parts.append(f"{count} {unit}{'s' * (count != 1)}")
    if micros or not parts:
        seconds = f"{micros / US_PER_SECOND:.6f}".rstrip("0").rstrip(".")
        parts.append(f"{seconds} second{'s' * (seconds != '1')}")
    return sign + " ".join(parts)


def _parse_date(value: Any) -> Any:
    """YAML gives a date for 2026-09-01 but a string for '2026-09-01': accept both."""
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"expected a date such as 2026-09-01, got {value!r}") from exc
    return value


def _parse_path(value: Any) -> Any:
    # the OS cannot open a name with a NUL byte: Path() accepts it and the first stat() raises ValueError
    if isinstance(value, (str, Path)) and "\0" in str(value):
        raise ValueError("a path cannot contain a NUL byte (\\0)")
    return Path(value) if isinstance(value, str) else value


def _short(value: Any, limit: int = 200) -> str:
    """``repr(value)`` of at most about ``limit`` characters, so that no message echoes a whole huge input.

    ``reprlib`` stops at a few items per level, so even a value that would print as megabytes
    (shared lists from YAML aliases) is never rendered in full.
    """
    short = reprlib.Repr()
    short.maxlevel, short.maxlist, short.maxdict, short.maxtuple, short.maxset = 3, 8, 8, 8, 8
    short.maxstring = short.maxother = short.maxlong = limit
    text = short.repr(value)
    return text if len(text) <= limit else f"{text[:limit]}..."


IsoDate = Annotated[dt.date, BeforeValidator(_parse_date)]
PathValue = Annotated[Path, BeforeValidator(_parse_path)]


class _Strict(BaseModel):
    # nan and inf pass `gt=0` and reach DuckDB or the kernels: no params value needs them
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


Scalar = Union[str, int, float, bool]


def _finite_values(value: Any) -> Any:
    """Reject nan and inf in a filter value with one message (the union's five errors say less)."""
    values = value if isinstance(value, list) else [value]
    bad = [v for v in values if isinstance(v, float) and not math.isfinite(v)]
    if bad:
        raise ValueError(f"filter values must be finite numbers or strings, got {bad[0]!r}")
    return value


class FilterSpec(_Strict):
    """A condition on an event column, e.g. ``{column: price, op: ">=", value: 100}``."""

    column: str
    op: Literal["==", "!=", "<", "<=", ">", ">=", "in", "not_in"] = "=="
    value: Annotated[Union[Scalar, list[Scalar]], BeforeValidator(_finite_values)]

    @model_validator(mode="after")
    def _value_matches_op(self) -> "FilterSpec":
        is_list = isinstance(self.value, list)
        if self.op in ("in", "not_in") and not is_list:
            raise ValueError(f"op {self.op!r} needs a list value, got {self.value!r}")
        if self.op not in ("in", "not_in") and is_list:
            raise ValueError(f"op {self.op!r} needs a single value, got a list")
        return self


class StepSpec(_Strict):
    """One funnel step: any of ``events`` (OR), optionally filtered."""

    name: str = Field(min_length=1)
    events: list[str] = Field(min_length=1)
    filters: list[FilterSpec] = []
    max_time: Union[Duration, None] = None
    """Longest allowed time from the previous step (ignored on the first step)."""


class ExclusionSpec(_Strict):
    """Drop a funnel attempt when one of ``events`` happens between two steps."""

    name: str = Field(min_length=1)
    events: list[str] = Field(min_length=1)
    filters: list[FilterSpec] = []
    between: Union[Annotated[list[str], Field(min_length=2, max_length=2)], None] = None
    """Names of the two steps; default: the first and the last step."""


def _default_steps() -> list[StepSpec]:
    return [StepSpec(name=e, events=[e]) for e in EVENTS.funnel]


FORMAT_STEPS: dict[str, tuple[str, ...]] = {
    "rees46": (EVENTS.view, EVENTS.cart, EVENTS.purchase),
    "retailrocket": (EVENTS.view, EVENTS.cart, EVENTS.purchase),
}
"""Default funnel steps of formats whose logs have no checkout event (the others: view → cart →
checkout → purchase). A checkout step on such a log would match nothing and read as 0% conversion."""


class FunnelParams(_Strict):
    steps: list[StepSpec] = Field(default_factory=_default_steps, min_length=2)
    window: Duration = dt.timedelta(days=7)
    mode: Literal["ordered", "strict", "any_order"] = "ordered"
    unit: Literal["user", "session"] = "user"
    exclusions: list[ExclusionSpec] = []
    censoring: Literal["exclude", "naive"] = "exclude"
    entry: Literal["first", "every"] = "first"
    """``first``: one window per unit from its first entry (a cohort rate); ``every``: each first-step
    event opens a window of its own, as ClickHouse's windowFunnel counts (see ``funnelkit.funnel``)."""
    attribution: Literal["first_step", "last_step"] = "first_step"
    breakdowns: list[str] = []
    """Segment columns to break conversion down by (they must exist in the data)."""
    min_segment_units: int = Field(default=30, ge=0)
    """In the report's breakdowns, segment values with fewer entrants than this are pooled into one row
    "other (n values under 30 units)" before the intervals and the test (0 keeps every value)."""
    trend_freq: Literal["day", "week"] = "week"

    @model_validator(mode="after")
    def _names_are_consistent(self) -> "FunnelParams":
        names = [s.name for s in self.steps]
        if len(set(names)) != len(names):
            raise ValueError(f"step names must be unique, got {names}")
        for exc in self.exclusions:
            if exc.between is not None:
                unknown = [n for n in exc.between if n not in names]
                if unknown:
                    raise ValueError(f"exclusion {exc.name!r}: between names unknown steps {unknown}; steps are {names}")
                if names.index(exc.between[0]) >= names.index(exc.between[1]):
                    raise ValueError(f"exclusion {exc.name!r}: between must name an earlier step first, got {list(exc.between)}")
        return self


def _parse_instant(value: Any) -> Any:
    """A date, a date-time or an ISO string as a UTC date-time (a naive one is taken as UTC)."""
    if isinstance(value, (str, dt.date)):
        try:
            stamp = pd.Timestamp(value)
        except (ValueError, TypeError, OverflowError) as exc:
            raise ValueError(f"expected a date or date-time such as 2026-09-01 or '2026-09-01 12:00+02:00', "
                             f"got {value!r}") from exc
        if pd.isna(stamp):
            raise ValueError(f"expected a date or date-time, got {value!r}")
        return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")).to_pydatetime()
    return value


Instant = Annotated[dt.datetime, BeforeValidator(_parse_instant),
                    PlainSerializer(lambda value: value.isoformat(), return_type=str)]


class TimeRange(_Strict):
    """Explicit bounds on event times (UTC when written without a zone): events before ``start`` or
    at or after ``end`` are excluded from the analysis and counted in the validation report."""

    start: Union[Instant, None] = None
    end: Union[Instant, None] = None

    @model_validator(mode="after")
    def _start_before_end(self) -> "TimeRange":
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise ValueError(f"start ({self.start.isoformat()}) must be before end ({self.end.isoformat()})")
        return self


class DataParams(_Strict):
    """Where the events come from and how to read them."""

    source: Union[PathValue, None] = None
    """File or folder of CSV/CSV.gz/Parquet files; null means the built-in simulated shop."""
    format: Literal["canonical", "rees46", "retailrocket", "ga4", "custom"] = "canonical"
    columns: dict[str, str] = {}
    """Custom mapping: canonical column name -> column name in the source."""
    event_type: Union[Annotated[str, Field(min_length=1)], None] = None
    """For a log without an event type column (a ratings or orders log): every row is one event of this
    type, e.g. ``purchase`` or ``rating``. Null: the log's event type column is required."""
    event_names: dict[str, str] = {}
    """Source event name -> canonical event type (added to the format's own mapping)."""
    segments: Union[list[str], None] = None
    """Source columns kept as segment columns; null keeps every unmapped column."""
    timestamp_unit: Union[Literal["s", "ms", "us"], None] = None
    """Unit of numeric epoch timestamps (formats that store numbers)."""
    assume_timezone: Union[str, None] = None
    """Time zone of timestamps written without one; null makes them an error."""
    session_gap_minutes: float = Field(default=30.0, gt=0)
    drop_duplicates: bool = False
    null_ids: Literal["error", "drop"] = "error"
    currency: str = "EUR"
    """Currency of the price column, for revenue figures in reports."""
    merge_event_names: bool = False
    """Allow a mapping (``event_names`` or the format's own) onto an event name the log already
    holds, merging both; without it such a mapping is an error naming both names and their counts."""
    time_range: Union[Literal["auto", "all"], TimeRange] = "auto"
    """Which event times are plausible: ``auto`` keeps the bulk of the log (its 5th to 95th
    percentile day) widened by that span, at least 7 days, on each side; ``{start, end}`` keeps
    start <= time < end; ``all`` keeps every event. Events outside are excluded and counted."""


class SimulationParams(_Strict):
    """The built-in shop. Defaults follow ``shared/calibration.md`` shapes."""

    seed: int = 7
    n_users: int = Field(default=50_000, ge=200)
    start: IsoDate = dt.date(2026, 9, 1)
    days: int = Field(default=56, ge=7)
    n_items: int = Field(default=5_000, ge=50)
    n_categories: int = Field(default=40, ge=2)
    taste_factors: int = Field(default=8, ge=1)
    n_bots: int = Field(default=25, ge=0)
    click_farm_accounts: int = Field(default=300, ge=0)
    fake_order_accounts: int = Field(default=60, ge=0)
    incident_days: int = Field(default=2, ge=0)
    checkout_logged_share: float = Field(default=1.0, ge=0, le=1)
    """Share of checkouts that emit a checkout event (some trackers skip it)."""
    cache_dir: PathValue = Path("../data/simulated")


class DriversParams(_Strict):
    """The conversion-drivers study (``funnelkit.drivers``): the step models and the purchase prediction."""

    window: Duration = dt.timedelta(days=1)
    """A session converts at a step when the step happens within this long of its start; sessions whose
    window is still open at the end of the log are left out, converted or not."""
    reference_price: float = Field(default=50.0, gt=0)
    """Price (in ``data.currency``) at which the step models' ``log_price`` = ln(last viewed price /
    reference_price) is 0. The default is the built-in shop's, so its planted ``log_price`` effect can be
    held against the estimate."""
    before: Union[Annotated[str, Field(min_length=1)], None] = EVENTS.cart
    """The purchase prediction sees a session's events before its first event of this type (the moment a
    nudge can still change the outcome); null: everything before the purchase."""
    folds: int = Field(default=5, ge=2)
    """Outer stratified cross-validation folds of the purchase prediction (a user's sessions in one fold)."""
    max_rows: Union[int, None] = Field(default=20_000, ge=100)
    """The prediction is fitted on a stratified random sample of at most this many sessions (the nested
    grid searches are costly; the intervals say how precise the scores are); null: every session."""
    seed: int = 7
    """Seeds the folds, the row sample and the models; when not given, ``simulation.seed``."""


class ALSSettings(_Strict):
    """Hyperparameters of implicit's ``AlternatingLeastSquares``.

    The defaults (16 factors, λ 1, α 1) were the best of the default sweep on both the built-in shop
    and a MovieLens-shaped ratings log; the former 64 / 0.05 / 10 reached 0.7× and 0.6× of their NDCG@10
    (README, "Default ALS settings"). The recommendation notebook uses the sweep's choice regardless.
    """

    factors: int = Field(default=16, ge=1)
    regularization: float = Field(default=1.0, ge=0)
    alpha: float = Field(default=1.0, gt=0)
    """Confidence scale: implicit trains on alpha × the weighted counts."""
    iterations: int = Field(default=15, ge=1)


class SweepGrid(_Strict):
    """The grid searched on the validation split (every combination is fitted)."""

    factors: list[Annotated[int, Field(ge=1)]] = Field(default=[16, 64], min_length=1)
    regularization: list[Annotated[float, Field(ge=0)]] = Field(default=[0.05, 1.0], min_length=1)
    alpha: list[Annotated[float, Field(gt=0)]] = Field(default=[1.0, 10.0, 40.0], min_length=1)


class BPRSettings(_Strict):
    factors: int = Field(default=64, ge=1)
    learning_rate: float = Field(default=0.05, gt=0)
    regularization: float = Field(default=0.01, ge=0)
    iterations: Union[Annotated[int, Field(ge=1)], list[Annotated[int, Field(ge=1)]]] = [10, 20, 40]
    """Epochs of BPR's stochastic gradient descent: one number, or a list each fitted on the validation
    split, the best NDCG@headline_k kept (as the ALS sweep chooses ALS's settings). BPR at this learning
    rate overfits with more epochs: on the built-in shop its validation NDCG@10 was 0.035 after 15 epochs
    against 0.018 after 100, on a MovieLens-shaped ratings log 0.25 after 25 against 0.14 after 100."""


class RecommendParams(_Strict):
    """The ALS recommendation study: how events become confidences, the split, models and metrics."""

    weights: dict[str, Annotated[float, Field(ge=0)]] = {EVENTS.view: 1.0, EVENTS.cart: 4.0,
                                                         EVENTS.checkout: 6.0, EVENTS.purchase: 10.0}
    """Weight of one event of each type; event types not listed are ignored."""
    weight_column: Union[str, None] = None
    """A numeric column of the log (a rating, a quantity) whose value multiplies each event's type weight;
    null = every event weighs its type's weight. Values must be finite and >= 0."""
    decay_half_life: Union[Duration, None] = None
    """Halve an event's weight per this much age at the training cut-off; null = no decay."""
    weighting: Literal["none", "bm25", "tfidf"] = "none"
    """Reweight the matrix with implicit's BM25 or TF-IDF helpers before fitting."""
    min_user_interactions: int = Field(default=1, ge=1)
    """Users with fewer distinct training items are left out of training and evaluation."""
    min_item_interactions: int = Field(default=1, ge=1)
    """Items with fewer distinct training users are left out of the catalogue."""
    split: Literal["temporal", "user_temporal", "leave_last_out"] = "temporal"
    """``temporal``: one cut-off for everyone; ``user_temporal``: each user's last ``test_fraction`` of
    interactions by time; ``leave_last_out``: each user's last test item (``funnelkit.recommend.split``)."""
    test_fraction: float = Field(default=0.2, gt=0, lt=1)
    """Per-user temporal split: the share of each user's interactions (latest first) held out as their test set."""
    test_period: Duration = dt.timedelta(days=14)
    """Temporal split: the last this-long of the log is the test period (unless ``cutoff`` is set)."""
    cutoff: Union[IsoDate, None] = None
    """Temporal split: first day of the test period (UTC midnight)."""
    test_events: list[str] = Field(default=[EVENTS.cart, EVENTS.purchase], min_length=1)
    """Event types whose (user, item) pairs in the test period are the truth to predict."""
    exclude_seen: bool = True
    """Never recommend an item the user interacted with in training, and do not count it as a test hit."""
    k: list[Annotated[int, Field(ge=1)]] = Field(default=[5, 10, 20], min_length=1)
    headline_k: int = Field(default=10, ge=1)
    als: ALSSettings = ALSSettings()
    sweep: SweepGrid = SweepGrid()
    knn_neighbours: int = Field(default=50, ge=1)
    bpr: BPRSettings = BPRSettings()
    bootstrap: int = Field(default=1000, ge=100)
    """Bootstrap resamples of users for every interval."""
    max_eval_users: Union[int, None] = Field(default=None, ge=100)
    """Evaluate on a random sample of this many test users (null = all)."""
    threads: int = Field(default=0, ge=0)
    """Threads for implicit's fits; 0 = all cores. BPR always fits on one thread (reproducible)."""
    seed: int = 0

    @model_validator(mode="after")
    def _headline_is_evaluated(self) -> "RecommendParams":
        if self.headline_k not in self.k:
            raise ValueError(f"headline_k {self.headline_k} must be one of k {self.k}")
        if not any(w > 0 for w in self.weights.values()):
            raise ValueError(f"weights must give at least one event type a positive weight, got {self.weights}")
        return self


class AnomalyParams(_Strict):
    """The anomaly study: KPI series and their detectors, and behavioural detectors."""

    kpi_freq: list[Literal["hour", "day"]] = Field(default=["hour", "day"], min_length=1)
    """Frequencies of the KPI series (UTC periods)."""
    kpi_window: Duration = dt.timedelta(days=1)
    """Conversion window of a session in the KPI series: only the sessions of the last this-long are still
    open (censored), so a broken step near the end of the log can be seen."""
    z_threshold: float = Field(default=3.5, gt=0)
    """Robust z (median/MAD) beyond which robust z and STL raise an alarm; 3-sigma uses 3."""
    rate_alpha: float = Field(default=0.001, gt=0, lt=1)
    """Family-wise false-alarm rate of the rate test over a series (Bonferroni across periods)."""
    min_sessions_per_period: int = Field(default=10, ge=1)
    """Fewest sessions behind a period's conversion rate: a step's rate from fewer sessions (one session
    moves it by 10 points or more) is left out of every detector. A frequency whose median period has
    fewer sessions entering the funnel is not monitored at all (too sparse: most of its rates would be
    left out), and the report says so."""
    top_share: float = Field(default=0.005, gt=0, lt=1)
    """Share of users each flagging detector flags (its top scores)."""
    flag_detectors: list[Literal["3-sigma", "IQR", "IsolationForest", "LOF", "k-means distance"]] = Field(
        default=["3-sigma", "IsolationForest", "k-means distance"], min_length=1)
    """Detectors whose top users are flagged (and written to flagged_users.csv); all are scored in the report."""
    fpr: float = Field(default=0.01, gt=0, lt=1)
    """False-positive rate at which recall is reported."""
    n_neighbors: int = Field(default=20, ge=2)
    """Neighbours of the Local Outlier Factor."""
    n_clusters: int = Field(default=8, ge=2)
    """Clusters of the k-means distance detector."""
    seed: int = 0


class RetentionParams(_Strict):
    """The retention study: cohorts, time to return, lifecycle and customer value (notebook 06)."""

    period: Literal["week", "month"] = "week"
    """Cohort and lifecycle period (calendar weeks from Monday or calendar months, UTC)."""
    periods: int = Field(default=8, ge=1)
    """Columns of the cohort matrix: periods since the cohort's own (0 = the cohort's period)."""
    return_event: Union[Annotated[str, Field(min_length=1)], None] = None
    """What counts as coming back in the cohort matrix: any event (None) or one event type, e.g. ``purchase``."""
    segment: Union[Annotated[str, Field(min_length=1)], None] = None
    """Column whose values split the survival curves (compared by a log-rank test); None: one curve."""
    return_within: Duration = dt.timedelta(days=30)
    """Horizon of the headline share of new visitors who come back (a later session) within it."""
    horizon: Duration = dt.timedelta(days=90)
    """Horizon of the expected customer value (repeat purchases and their spend after a first purchase)."""
    holdout_share: float = Field(default=0.25, gt=0, lt=1)
    """Share of the log's span held out at its end to check the customer-value model's predictions."""
    min_cohort_users: int = Field(default=30, ge=1)
    """Cohorts with fewer users are shown but not coloured (their shares swing by several points per user)."""


class WhatIfSpec(_Strict):
    """One change a shop could make to a journey: a transition made more (or less) likely."""

    transition: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=2, max_length=2)]
    """The two states ``[from, to]``, e.g. ``[delivery, payment]`` (states as :class:`JourneysParams` names them)."""
    change: float = Field(gt=-1)
    """Relative change of that transition's probability: ``0.1`` raises it by 10% (the other transitions out
    of ``from`` shrink in proportion)."""


class JourneysParams(_Strict):
    """The journeys study: sessions as walks over page states ending in purchase or exit (notebook 05)."""

    states: dict[str, str] = {}
    """Event name → state, to rename or merge event names (``{product_view: view, main: home}``); unmapped names
    are states of their own. ``purchase`` is the state a session converts in (``data.event_names`` maps a log's
    order event to it)."""
    max_states: int = Field(default=12, ge=2)
    """The most frequent states keep their name (the funnel's steps always do); the rest become ``other``."""
    bootstrap: int = Field(default=500, ge=100)
    """Bootstrap replicates behind every interval (users resampled, with all their sessions)."""
    what_if: list[WhatIfSpec] = []
    """Changes to evaluate: the predicted conversion and revenue per session if a transition changed."""
    predict: bool = True
    """Compare next-event models (Markov chains of order 1 and 2, gradient boosting, an LSTM) on a temporal split."""
    test_share: float = Field(default=0.25, gt=0, lt=1)
    """Share of the log's span, at its end, whose journeys test the models (the earlier ones train them)."""
    predict_after: list[Annotated[int, Field(ge=1)]] = Field(default=[1, 3, 5], min_length=1)
    """Pages seen after which "will this session end in a purchase?" is scored."""
    max_length: int = Field(default=50, ge=2)
    """Positions of a journey the models read and are scored on (longer journeys are cut)."""
    max_sessions: Union[Annotated[int, Field(ge=100)], None] = 200_000
    """Journeys the models use at most (a random sample chosen in the engine); None: every one."""
    lstm: bool = True
    """Fit the LSTM too (needs the ``sequence`` extra: Keras 3 and JAX)."""
    lstm_journeys: int = Field(default=30_000, ge=100)
    """Training journeys of the LSTM at most (a random sample of the training period)."""
    seed: int = 0
    """Seed of the bootstraps, the samples and the models."""


class SparkParams(_Strict):
    """Where the Spark engine runs (``engine.name: spark``)."""

    master: str = "local[2]"
    """Spark master URL: ``local[N]`` on this machine, ``spark://host:7077``, ``yarn``, ..."""
    options: dict[str, Union[str, int, float, bool]] = {}
    """Extra Spark settings, e.g. ``{spark.executor.memory: 8g}``."""
    table: Union[str, None] = None
    """Read the events from this table of the Spark session (canonical columns) instead of ``data.source``."""


def _registered_engine(name: str) -> str:
    from .engines import ENGINES  # the registry is the one list of engines

    if name not in ENGINES:
        raise ValueError(f"expected one of the engines {', '.join(map(repr, ENGINES))}, got {name!r}")
    return name


class EngineParams(_Strict):
    name: Annotated[str, AfterValidator(_registered_engine)] = "duckdb"
    """Where the event-level work runs: ``duckdb`` (one machine, default), ``spark`` (a cluster), or
    another engine of ``funnelkit.engines.ENGINES``."""
    memory_limit: str = Field(default="2GB", pattern=r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$")
    """DuckDB's memory limit, e.g. ``2GB``; beyond it DuckDB spills to disk."""
    threads: Union[int, None] = Field(default=None, ge=1)
    spark: SparkParams = SparkParams()


class ReportParams(_Strict):
    """What the HTML reports show (``funnelkit.pseudonym``)."""

    pseudonymise_ids: bool = True
    """Replace customer and session ids by keyed pseudonyms in every report (the follow-up CSVs keep the ids)."""
    id_key_env: str = Field(default="FUNNELKIT_ID_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """Environment variable holding the pseudonym key; unset, each run draws a random key."""


class Params(_Strict):
    """A whole params file."""

    data: DataParams = DataParams()
    simulation: SimulationParams = SimulationParams()
    funnel: FunnelParams = FunnelParams()
    drivers: DriversParams = DriversParams()
    engine: EngineParams = EngineParams()
    recommend: RecommendParams = RecommendParams()
    anomaly: AnomalyParams = AnomalyParams()
    retention: RetentionParams = RetentionParams()
    journeys: JourneysParams = JourneysParams()
    report: ReportParams = ReportParams()
    source_file: Union[Path, None] = Field(default=None, exclude=True)
    """The file these params were read from (set by :func:`load_params`)."""

    @model_validator(mode="before")
    @classmethod
    def _default_steps_fit_the_format(cls, raw: Any) -> Any:
        """Without ``funnel.steps``, a format without checkout events gets the steps it has."""
        if not isinstance(raw, dict):
            return raw
        section = raw.get("data")
        fmt = section.get("format") if isinstance(section, dict) else getattr(section, "format", None)
        steps = FORMAT_STEPS.get(fmt) if isinstance(fmt, str) else None
        funnel = raw.get("funnel", {})
        if isinstance(funnel, FunnelParams):  # built in code: its fields set say what was given
            funnel = {name: getattr(funnel, name) for name in funnel.model_fields_set}
        if steps is None or not isinstance(funnel, dict) or "steps" in funnel:
            return raw
        return {**raw, "funnel": {**funnel, "steps": [{"name": e, "events": [e]} for e in steps]}}

    @model_validator(mode="before")
    @classmethod
    def _drivers_seed_is_the_shop_seed(cls, raw: Any) -> Any:
        """Without ``drivers.seed``, the drivers study is seeded by ``simulation.seed``: one key sets every
        random draw of a run of the built-in shop."""
        if not isinstance(raw, dict):
            return raw
        drivers = raw.get("drivers", {})
        if isinstance(drivers, DriversParams):  # built in code: its fields set say what was given
            drivers = {name: getattr(drivers, name) for name in drivers.model_fields_set}
        simulation = raw.get("simulation", {})
        seed = simulation.get("seed") if isinstance(simulation, dict) else getattr(simulation, "seed", None)
        # a wrong seed is reported once, under simulation.seed
        if not isinstance(drivers, dict) or "seed" in drivers or type(seed) is not int:
            return raw
        return {**raw, "drivers": {**drivers, "seed": seed}}

    @model_validator(mode="after")
    def _spark_table_needs_spark(self) -> "Params":
        """``engine.spark.table`` without the Spark engine would leave the run without data (or, before this
        check, quietly on the simulated shop): say so when the params are read."""
        if self.engine.spark.table is not None and self.engine.name != "spark" and self.data.source is None:
            raise ValueError(f"engine.spark.table ({self.engine.spark.table!r}) is read only with engine.name: "
                             f"spark; set engine.name: spark, or data.source for the {self.engine.name} engine")
        return self

    @property
    def simulated(self) -> bool:
        """True when the run analyses the built-in simulated shop (no ``data.source``, no Spark table).

        The one place that decides it: the planted truth (``funnelkit.groundtruth``) exists only then.
        """
        return self.data.source is None and self.engine.spark.table is None

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def _resolve_paths(raw: dict, base: Path) -> dict:
    """Make relative paths absolute against ``base`` (the params file's folder)."""
    for section, key in (("data", "source"), ("simulation", "cache_dir")):
        value = raw.get(section, {}).get(key) if isinstance(raw.get(section), dict) else None
        if isinstance(value, str) and value and "\0" not in value:  # a NUL byte: the schema says so
            path = Path(value).expanduser()
            raw[section][key] = path if path.is_absolute() else (base / path).resolve()
    return raw


def _accepted(model: type[BaseModel], loc: tuple) -> str:
    """The keys accepted at ``loc`` (the parent of a rejected key)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            break
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        candidates = [annotation, *args, *[a for arg in args for a in getattr(arg, "__args__", ())]]
        current = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if current is None:
            return ""
    fields = getattr(current, "model_fields", {})
    return ", ".join(name for name, f in fields.items() if not f.exclude)


def format_validation_error(error: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid parameters"]
    for item in error.errors():
        loc = tuple(item["loc"])
        key = ".".join(str(p) for p in loc) or "(top level)"
        if item["type"] == "extra_forbidden":
            accepted = _accepted(Params, loc[:-1])
            lines.append(f"  key '{key}' is not accepted; accepted keys here: {accepted}")
        else:
            got = item.get("input")
            message = item["msg"] if len(item["msg"]) <= 300 else item["msg"][:300] + "..."
            lines.append(f"  key '{key}': {message} (got {type(got).__name__} {_short(got)})")
    return "\n".join(lines)


def parse_params(raw: Any, source: str = "<params>", base: Path | None = None) -> Params:
    """Validate a mapping (as read from YAML) into :class:`Params`.

    Raises
    ------
    ParamsError
        On unknown keys, wrong types or inconsistent values, naming each key.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: expected a mapping of sections at the top level, got {type(raw).__name__}")
    base = base or Path.cwd()
    raw = _resolve_paths(dict(raw), base)
    try:
        params = Params.model_validate(raw)
    except ValidationError as exc:
        raise ParamsError(format_validation_error(exc, source)) from None
    # a default relative path is relative to the params file too, not to wherever the process runs
    cache_dir = params.simulation.cache_dir
    if not cache_dir.is_absolute():
        simulation = params.simulation.model_copy(update={"cache_dir": (base / cache_dir).resolve()})
        params = params.model_copy(update={"simulation": simulation})
    return params


MAX_PARAMS_BYTES = 1_000_000
"""A params file is a few kilobytes; anything near this is not one."""
MAX_YAML_NODES = 100_000
"""Values a params file may hold once its aliases are expanded (a "billion laughs" file holds 10⁹)."""
MAX_YAML_DEPTH = 50
"""Nesting depth of a params file (the schema needs 5; PyYAML recurses once per level)."""


class _YamlLimit(yaml.YAMLError):
    """The YAML is well formed but too deep or too large once its aliases are expanded."""


class _SafeLoader(yaml.SafeLoader):
    """PyYAML's safe loader, which also stops at :data:`MAX_YAML_DEPTH` levels of nesting and at
    :data:`MAX_YAML_NODES` values counted with every alias expanded, before building anything."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise _YamlLimit(f"nested more than {MAX_YAML_DEPTH} levels deep (line {self.peek_event().start_mark.line + 1})")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def get_single_node(self):
        node = super().get_single_node()
        if node is not None:
            _expanded_size(node, {}, set())
        return node


def _expanded_size(node: yaml.Node, sizes: dict[int, int], open_nodes: set[int]) -> int:
    """Values under ``node`` with every alias expanded, counted once per shared node (linear time)."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_nodes:
        raise _YamlLimit("an alias refers to a value that contains it (a recursive structure)")
    open_nodes.add(key)
    if isinstance(node, yaml.SequenceNode):
        children = node.value
    elif isinstance(node, yaml.MappingNode):
        children = [part for pair in node.value for part in pair]
    else:
        children = []
    size = 1 + sum(_expanded_size(child, sizes, open_nodes) for child in children)
    open_nodes.discard(key)
    if size > MAX_YAML_NODES:
        raise _YamlLimit(f"more than {MAX_YAML_NODES:,} values once its aliases (*name) are expanded")
    sizes[key] = size
    return size


def _read_yaml(path: Path) -> Any:
    """The content of a params file, read safely: size, depth and alias expansion capped, UTF-8 only."""
    size = path.stat().st_size
    if size > MAX_PARAMS_BYTES:
        raise ParamsError(f"{path}: {size:,} bytes is too large for a params file (at most {MAX_PARAMS_BYTES:,})")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParamsError(f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                          "save the params file as UTF-8") from None
    try:
        return yaml.load(text, Loader=_SafeLoader)  # noqa: S506 - a SafeLoader subclass
    except _YamlLimit as exc:
        raise ParamsError(f"{path}: not accepted as a params file: {exc}") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {exc}") from None
    except RecursionError:  # a backstop: the depth cap should stop it first
        raise ParamsError(f"{path}: not accepted as a params file: nested too deeply") from None


def load_params(path: str | Path) -> Params:
    """Read and validate a params file (YAML, safe loader).

    The file may hold at most :data:`MAX_PARAMS_BYTES` bytes of UTF-8, nest at most
    :data:`MAX_YAML_DEPTH` levels and expand to at most :data:`MAX_YAML_NODES` values.

    Raises
    ------
    ParamsError
        If the file is missing, too large, not UTF-8, not valid YAML, over the limits
        above, or fails validation.
    """
    path = Path(path)
    if "\0" in str(path):
        raise ParamsError(f"params file name contains a NUL byte: {_short(str(path))}")
    if not path.is_file():
        raise ParamsError(f"params file not found: {path}")
    raw = _read_yaml(path)
    params = parse_params(raw, source=str(path), base=path.resolve().parent)
    return params.model_copy(update={"source_file": path.resolve()})
