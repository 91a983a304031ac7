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
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import pandas as pd
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    model_validator,
)

from .errors import ParamsError
from .schema import EVENTS


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
    for unit, size in (("D", 86_400_000_000), ("h", 3_600_000_000), ("min", 60_000_000), ("s", 1_000_000),
                       ("ms", 1_000)):
        if micros % size == 0:
            return f"{micros // size}{unit}"
    return f"{micros}us"


def _parse_date(value: Any) -> Any:
    """YAML gives a date for 2026-09-01 but a string for '2026-09-01': accept both."""
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"expected a date such as 2026-09-01, got {value!r}") from exc
    return value


def _parse_path(value: Any) -> Any:
    return Path(value) if isinstance(value, str) else value


IsoDate = Annotated[dt.date, BeforeValidator(_parse_date)]
PathValue = Annotated[Path, BeforeValidator(_parse_path)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


Scalar = Union[str, int, float, bool]


class FilterSpec(_Strict):
    """A condition on an event column, e.g. ``{column: price, op: ">=", value: 100}``."""

    column: str
    op: Literal["==", "!=", "<", "<=", ">", ">=", "in", "not_in"] = "=="
    value: Union[Scalar, list[Scalar]]

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


class FunnelParams(_Strict):
    steps: list[StepSpec] = Field(default_factory=_default_steps, min_length=2)
    window: Duration = dt.timedelta(days=7)
    mode: Literal["ordered", "strict", "any_order"] = "ordered"
    unit: Literal["user", "session"] = "user"
    exclusions: list[ExclusionSpec] = []
    censoring: Literal["exclude", "naive"] = "exclude"
    attribution: Literal["first_step", "last_step"] = "first_step"
    breakdowns: list[str] = []
    """Segment columns to break conversion down by (they must exist in the data)."""
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


class DataParams(_Strict):
    """Where the events come from and how to read them."""

    source: Union[PathValue, None] = None
    """File or folder of CSV/CSV.gz/Parquet files; null means the built-in simulated shop."""
    format: Literal["canonical", "rees46", "retailrocket", "ga4", "custom"] = "canonical"
    columns: dict[str, str] = {}
    """Custom mapping: canonical column name -> column name in the source."""
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


class ALSSettings(_Strict):
    """Hyperparameters of implicit's ``AlternatingLeastSquares``."""

    factors: int = Field(default=64, ge=1)
    regularization: float = Field(default=0.05, ge=0)
    alpha: float = Field(default=10.0, gt=0)
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
    iterations: int = Field(default=100, ge=1)


class RecommendParams(_Strict):
    """The ALS recommendation study: how events become confidences, the split, models and metrics."""

    weights: dict[str, Annotated[float, Field(ge=0)]] = {EVENTS.view: 1.0, EVENTS.cart: 4.0,
                                                         EVENTS.checkout: 6.0, EVENTS.purchase: 10.0}
    """Weight of one event of each type; event types not listed are ignored."""
    decay_half_life: Union[Duration, None] = None
    """Halve an event's weight per this much age at the training cut-off; null = no decay."""
    weighting: Literal["none", "bm25", "tfidf"] = "none"
    """Reweight the matrix with implicit's BM25 or TF-IDF helpers before fitting."""
    min_user_interactions: int = Field(default=1, ge=1)
    """Users with fewer distinct training items are left out of training and evaluation."""
    min_item_interactions: int = Field(default=1, ge=1)
    """Items with fewer distinct training users are left out of the catalogue."""
    split: Literal["temporal", "leave_last_out"] = "temporal"
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
    """Threads for implicit's fits; 0 = all cores."""
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


class SparkParams(_Strict):
    """Where the Spark engine runs (``engine.name: spark``)."""

    master: str = "local[2]"
    """Spark master URL: ``local[N]`` on this machine, ``spark://host:7077``, ``yarn``, ..."""
    options: dict[str, Union[str, int, float, bool]] = {}
    """Extra Spark settings, e.g. ``{spark.executor.memory: 8g}``."""
    table: Union[str, None] = None
    """Read the events from this table of the Spark session (canonical columns) instead of ``data.source``."""


class EngineParams(_Strict):
    name: Literal["duckdb", "spark"] = "duckdb"
    """Where the event-level work runs: ``duckdb`` (one machine, default) or ``spark`` (a cluster)."""
    memory_limit: str = Field(default="2GB", pattern=r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$")
    """DuckDB's memory limit, e.g. ``2GB``; beyond it DuckDB spills to disk."""
    threads: Union[int, None] = Field(default=None, ge=1)
    spark: SparkParams = SparkParams()


class Params(_Strict):
    """A whole params file."""

    data: DataParams = DataParams()
    simulation: SimulationParams = SimulationParams()
    funnel: FunnelParams = FunnelParams()
    engine: EngineParams = EngineParams()
    recommend: RecommendParams = RecommendParams()
    anomaly: AnomalyParams = AnomalyParams()
    source_file: Union[Path, None] = Field(default=None, exclude=True)
    """The file these params were read from (set by :func:`load_params`)."""

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def _resolve_paths(raw: dict, base: Path) -> dict:
    """Make relative paths absolute against ``base`` (the params file's folder)."""
    for section, key in (("data", "source"), ("simulation", "cache_dir")):
        value = raw.get(section, {}).get(key) if isinstance(raw.get(section), dict) else None
        if isinstance(value, str) and value:
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
            lines.append(f"  key '{key}': {item['msg']} (got {type(got).__name__} {got!r})")
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


def load_params(path: str | Path) -> Params:
    """Read and validate a params file (YAML, safe loader).

    Raises
    ------
    ParamsError
        If the file is missing, is not valid YAML, or fails validation.
    """
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"params file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {exc}") from None
    params = parse_params(raw, source=str(path), base=path.resolve().parent)
    return params.model_copy(update={"source_file": path.resolve()})
