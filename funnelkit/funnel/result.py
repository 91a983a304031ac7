"""FunnelResult: the per-unit table in the engine and the small tables derived from it."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from numbers import Integral

import numpy as np
import pandas as pd

from ..engines import quote
from ..errors import SchemaError
from ..eventlog import EventLog
from ..params import FunnelParams
from ..schema import COLUMNS
from .sql import match_sql, unit_column
from ..stats import chi2_independence, pool_small, rate_frame

MISSING_SEGMENT = "(missing)"
PERIOD_LENGTH = {"hour": pd.Timedelta(hours=1), "day": pd.Timedelta(days=1), "week": pd.Timedelta(weeks=1)}
"""Length of a period of each frequency of :meth:`FunnelResult.by_period`."""
_CALENDAR_FREQ = {"hour": "h", "day": "D", "week": "W-MON"}  # pandas aliases of the same periods


@dataclass
class Breakdown:
    """Conversion by segment value, with Wilson intervals and a test of independence.

    Attributes
    ----------
    column : str
        The segment column.
    attribution : {"first_step", "last_step"}
        Which event's segment value a unit is counted under.
    table : DataFrame
        One row per value: ``entrants`` (units that entered), ``converted``
        (reached the last step), ``conversion`` = converted / entrants and its
        95% Wilson interval ``ci_low``/``ci_high``, ``share`` of entrants, and
        ``reached_<step>`` counts for every step. With ``min_units``, values
        with fewer entrants are one last row "other (n values under m units)".
    test : dict
        Test of independence of value and conversion
        (:func:`funnelkit.stats.chi2_independence`: chi-square, or an exact
        test when an expected count is under 5): ``chi2``, ``dof``,
        ``pvalue``, ``min_expected``, ``method``.
    """

    column: str
    attribution: str
    table: pd.DataFrame
    test: dict

    def plot(self, ax=None):
        from ..plots import breakdown_chart

        return breakdown_chart(self, ax=ax)


@dataclass
class FunnelResult:
    """The outcome of :func:`funnelkit.funnel.run_funnel`.

    Counts are of units (users or sessions). Unless ``censoring="naive"``,
    every count and rate leaves out censored units (window still open at
    ``data_end``); they are reported in :attr:`censored`.

    The per-unit table stays in the event log's engine. Code outside the
    funnel reads it through :meth:`units_sql` (a relation for further engine
    queries), :meth:`units` (the same rows as pandas) and :meth:`by_period`
    (counts per period of entry), never by the table's name.

    Attributes
    ----------
    events : EventLog
        The events the funnel was computed on.
    spec : FunnelParams
        The funnel, validated.
    units_table : str
        Name of the per-unit table in the engine, made by :func:`run_funnel`. Its layout is
        the funnel's own and may change: outside ``funnelkit.funnel`` read it through
        :meth:`units_sql` and :meth:`units`.
    data_end : Timestamp
        Where the data ends for censoring (UTC).
    """

    events: EventLog
    spec: FunnelParams
    units_table: str
    data_end: pd.Timestamp

    @property
    def step_names(self) -> list[str]:
        return [s.name for s in self.spec.steps]

    def step_index(self, step: str | int) -> int:
        """The position of a step in the funnel (0 for the first), from its name or its position.

        Raises
        ------
        ValueError
            If no step has that name, or the position is not one of the steps'.
        """
        n = len(self.step_names)
        if isinstance(step, Integral) and not isinstance(step, bool):
            if not 0 <= step < n:
                raise ValueError(f"step {step} is out of range: the funnel has {n} steps, numbered from 0")
            return int(step)
        if step not in self.step_names:
            raise ValueError(f"no step named {step!r}; the steps are {self.step_names}")
        return self.step_names.index(step)

    def units_sql(self, *, reached: str | int | None = None, furthest: str | int | None = None,
                  resolved: bool | None = True) -> str:
        """The per-unit rows as a parenthesised SELECT, to use in further queries on :attr:`events`.

        Parameters
        ----------
        reached : str or int, optional
            Keep the units that reached this step (name or position *k*):
            ``depth > k``.
        furthest : str or int, optional
            Keep the units whose furthest step is this one, that is which
            reached it and went no further: ``depth = k + 1``. For the last
            step it is the same as ``reached``.
        resolved : bool or None, default True
            True keeps resolved units (window closed by :attr:`data_end`),
            False the censored ones, None every unit. With
            ``censoring="naive"`` no unit is censored.

        Returns
        -------
        str
            ``(SELECT ... )`` in DuckDB's dialect (the engine translates it),
            one row per unit with columns

            ``unit``
                The unit's id (user or session id).
            ``entry``
                When the unit entered the funnel (µs since the epoch, UTC).
            ``start``
                Start of the attempt that gave its result (µs).
            ``depth``
                Number of steps reached (1 to the number of steps).
            ``censored``
                Whether its window was still open at :attr:`data_end`.
            ``T0``, ``T1``, ...
                When it reached each step (µs), NULL past its depth.

            The rules behind every column are in ``funnelkit.funnel``.
        """
        condition = _unit_condition(
            resolved=resolved,
            reached=None if reached is None else self.step_index(reached),
            furthest=None if furthest is None else self.step_index(furthest),
        )
        return f"(SELECT * FROM {self.units_table} WHERE {condition})"

    def units(self, *, reached: str | int | None = None, furthest: str | int | None = None,
              resolved: bool | None = True) -> pd.DataFrame:
        """The rows of :meth:`units_sql` as pandas, ordered by unit (one row per unit: use on small data)."""
        return self.events.query(
            f"SELECT * FROM {self.units_sql(reached=reached, furthest=furthest, resolved=resolved)} AS u ORDER BY unit"
        )

    @cached_property
    def steps(self) -> pd.DataFrame:
        """Per-step table.

        Columns: ``step``; ``entrants`` (units that reached the step);
        ``step_conversion`` = entrants / previous step's entrants with Wilson
        95% ``step_ci_low``/``step_ci_high``; ``overall_conversion`` =
        entrants / first step's entrants with ``overall_ci_low``/``_high``;
        ``drop_off`` = previous step's entrants who did not reach this step
        and ``drop_off_rate`` = drop_off / previous entrants;
        ``median_time_from_previous`` and ``p90_time_from_previous``
        (Timedelta, over units that reached the step, from their previous
        step in the same attempt; continuous quantiles); ``censored`` = units
        whose window is still open that have reached the step so far.
        """
        n = len(self.step_names)
        reach = ", ".join(f"count(*) FILTER (WHERE {_unit_condition(reached=k)}) AS r{k}" for k in range(n))
        censored = ", ".join(f"count(*) FILTER (WHERE {_unit_condition(reached=k, resolved=False)}) AS c{k}"
                             for k in range(n))
        quantiles = ", ".join(
            f"quantile_cont(T{k} - T{k - 1}, 0.5) FILTER (WHERE {_unit_condition(reached=k)}) AS m{k}, "
            f"quantile_cont(T{k} - T{k - 1}, 0.9) FILTER (WHERE {_unit_condition(reached=k)}) AS p{k}"
            for k in range(1, n)
        )
        row = self.events.query(
            f"SELECT {reach}, {censored}"
            + (f", {quantiles}" if quantiles else "")
            + f" FROM {self.units_table}"
        ).iloc[0]
        entrants = np.array([int(row[f"r{k}"]) for k in range(n)])
        previous = np.concatenate([[np.nan], entrants[:-1]])
        step = rate_frame(entrants, np.where(np.isnan(previous), entrants, previous), prefix="step_")
        step.iloc[0] = np.nan
        overall = rate_frame(entrants, np.full(n, entrants[0]), prefix="overall_")
        frame = pd.DataFrame({"step": self.step_names, "entrants": entrants})
        frame["step_conversion"] = step["step_rate"]
        frame[["step_ci_low", "step_ci_high"]] = step[["step_ci_low", "step_ci_high"]]
        frame["overall_conversion"] = overall["overall_rate"]
        frame[["overall_ci_low", "overall_ci_high"]] = overall[["overall_ci_low", "overall_ci_high"]]
        frame["drop_off"] = previous - entrants
        with np.errstate(invalid="ignore", divide="ignore"):
            frame["drop_off_rate"] = frame["drop_off"] / previous
        frame["median_time_from_previous"] = [pd.NaT] + [_micros_to_timedelta(row[f"m{k}"]) for k in range(1, n)]
        frame["p90_time_from_previous"] = [pd.NaT] + [_micros_to_timedelta(row[f"p{k}"]) for k in range(1, n)]
        frame["censored"] = [int(row[f"c{k}"]) for k in range(n)]
        return frame

    @property
    def overall(self) -> dict:
        """Overall conversion (last step / first step) with its 95% Wilson interval."""
        last = self.steps.iloc[-1]
        return {
            "entrants": int(self.steps["entrants"].iloc[0]),
            "converted": int(last["entrants"]),
            "conversion": float(last["overall_conversion"]),
            "ci_low": float(last["overall_ci_low"]),
            "ci_high": float(last["overall_ci_high"]),
        }

    @cached_property
    def censored(self) -> pd.DataFrame:
        """Censored units (window open at ``data_end``) by the furthest step reached so far.

        Columns ``step`` and ``units`` (censored units whose furthest step so
        far is this one); empty counts when ``censoring="naive"``.
        """
        counts = self.events.query(
            f"SELECT depth, count(*) AS units FROM {self.units_sql(resolved=False)} AS u GROUP BY depth"
        ).set_index("depth")["units"]
        units = [int(counts.get(k + 1, 0)) for k in range(len(self.step_names))]
        return pd.DataFrame({"step": self.step_names, "units": units})

    def worst_step(self) -> pd.Series:
        """The step with the lowest step conversion (where most entrants are lost)."""
        return self.steps.iloc[1:].sort_values("step_conversion").iloc[0]

    def revenue_per_conversion(self) -> float:
        """Mean revenue of a converting unit, in the data's currency.

        For each resolved unit that reached the last step: the sum of
        ``price`` over its last-step events at the instant it converted
        (``T_last``). NaN when the events have no ``price`` column or nobody
        converted.
        """
        return self.conversion_revenue()["mean"]

    def conversion_revenue(self) -> dict:
        """Revenue of the converting units, in the data's currency.

        A converting unit's revenue is the sum of ``price`` over its last-step
        events at the instant it converted (``T_last``), for each resolved unit
        that reached the last step (units whose purchase has no price are left
        out). Returns ``units`` (converting units with a revenue), ``mean``,
        ``std`` (sample standard deviation, for the interval of a mean) and
        ``total``; NaN (``units`` 0) when the events have no ``price`` column
        or nobody converted.
        """
        empty = {"units": 0, "mean": float("nan"), "std": float("nan"), "total": float("nan")}
        if COLUMNS.price not in self.events.columns:
            return empty
        n = len(self.step_names)
        last = self.spec.steps[-1]
        unit_col = quote(unit_column(self.spec.unit))
        units, mean, std, total = self.events.rows(
            f"WITH c AS (SELECT unit, T{n - 1} AS t FROM {self.units_sql(reached=n - 1)} AS u), "
            f"v AS (SELECT c.unit, sum(e.{quote(COLUMNS.price)}) AS revenue FROM c JOIN {quote(self.events.table)} e "
            f"ON e.{unit_col} = c.unit AND epoch_us(e.{quote(COLUMNS.event_time)}) = c.t "
            f"WHERE {match_sql(last.events, last.filters)} GROUP BY c.unit) "
            f"SELECT count(revenue), avg(revenue), stddev_samp(revenue), sum(revenue) FROM v"
        )[0]
        if not units:
            return empty
        return {"units": int(units), "mean": float(mean), "std": float("nan") if std is None else float(std),
                "total": float(total)}

    def logged_revenue(self) -> float:
        """The sum of ``price`` over every last-step event in the log, in the data's currency.

        What the shop took in the whole period as the log records it: every
        unit, censored or not, every purchase (repeat ones too), whatever the
        funnel. NaN without a ``price`` column or without last-step events.
        """
        if COLUMNS.price not in self.events.columns:
            return float("nan")
        last = self.spec.steps[-1]
        (value,) = self.events.rows(self.events.revenue_sql(condition=match_sql(last.events, last.filters)))[0]
        return float("nan") if value is None else float(value)

    def breakdown(self, column: str, attribution: str | None = None, min_units: int = 0) -> Breakdown:
        """Conversion by the values of a segment column (see :class:`Breakdown`).

        Values with fewer than ``min_units`` entrants are pooled into one row
        before the intervals and the test (the notebook passes
        ``funnel.min_segment_units``): a value seen on 7 units has an interval
        as wide as the axis and makes the test's expected counts tiny.
        """
        if column not in self.events.columns:
            raise SchemaError(
                f"breakdown column {column!r} (funnel.breakdowns) is not in the events; "
                f"columns found: {', '.join(self.events.columns)}"
            )
        attribution = attribution or self.spec.attribution
        n = len(self.step_names)
        unit_col = quote(unit_column(self.spec.unit))
        if attribution == "first_step":
            steps = [0]
            time_expr, matched = "u.T0", "e.m0"
        else:
            steps = list(range(n))
            time_expr = "CASE u.depth " + " ".join(f"WHEN {k + 1} THEN u.T{k}" for k in range(n)) + " END"
            matched = "CASE u.depth " + " ".join(f"WHEN {k + 1} THEN e.m{k}" for k in range(n)) + " ELSE FALSE END"
        matches = {k: match_sql(self.spec.steps[k].events, self.spec.steps[k].filters) for k in steps}
        flags = ", ".join(f"({m}) AS m{k}" for k, m in matches.items())
        any_step = " OR ".join(f"({m})" for m in matches.values())
        step_events = (f"SELECT {unit_col} AS unit, epoch_us({quote(COLUMNS.event_time)}) AS t, "
                       f"{quote(column)} AS v, {flags} FROM {quote(self.events.table)} WHERE {any_step}")
        # the value at the attributed step's event (simultaneous ones: the smallest), found by
        # joining each unit to its events at that time: a join, not a group-by of every event
        values = (f"SELECT u.unit, min(e.v) AS v FROM ({step_events}) e JOIN u "
                  f"ON e.unit = u.unit AND e.t = {time_expr} WHERE {matched} GROUP BY u.unit")
        reach = ", ".join(f"count(*) FILTER (WHERE depth > {k}) AS reached_{k}" for k in range(n))
        table = self.events.query(
            f"WITH u AS (SELECT * FROM {self.units_sql()} AS resolved), vals AS ({values}) "
            f"SELECT CAST(vals.v AS VARCHAR) AS value, {reach} FROM u LEFT JOIN vals ON vals.unit = u.unit "
            f"GROUP BY ALL ORDER BY reached_0 DESC, value"
        )
        table["value"] = table["value"].fillna(MISSING_SEGMENT)
        table = table.rename(columns={f"reached_{k}": f"reached_{name}" for k, name in enumerate(self.step_names)})
        table = pool_small(table, "value", f"reached_{self.step_names[0]}", min_units)
        entrants = table[f"reached_{self.step_names[0]}"].to_numpy()
        converted = table[f"reached_{self.step_names[-1]}"].to_numpy()
        rates = rate_frame(converted, entrants)
        out = pd.DataFrame({"value": table["value"], "entrants": entrants, "converted": converted})
        out["conversion"] = rates["rate"].to_numpy()
        out["ci_low"] = rates["ci_low"].to_numpy()
        out["ci_high"] = rates["ci_high"].to_numpy()
        out["share"] = entrants / max(entrants.sum(), 1)
        out = pd.concat([out, table.drop(columns="value")], axis=1)
        test = chi2_independence(np.column_stack([converted, entrants - converted]))
        return Breakdown(column=column, attribution=attribution, table=out, test=test)

    def by_period(self, freq: str, *, empty_periods: bool = False) -> pd.DataFrame:
        """Units by period of entry (``hour``, ``day`` or ``week``; weeks start Monday; UTC), counted in the engine.

        A unit belongs to the period containing its ``entry``. Both
        :meth:`trend` and the KPI series of ``funnelkit.anomaly.kpi`` are
        this table.

        Parameters
        ----------
        freq : {"hour", "day", "week"}
            Period length.
        empty_periods : bool, default False
            Also give the periods between the first and the last with no
            entrant (zero counts), so that the rows make a complete calendar.

        Returns
        -------
        DataFrame
            One row per period, in time order, with columns

            ``period``
                Start of the period (tz-aware UTC Timestamp).
            ``units``
                Units that entered the funnel in the period, censored ones
                included (traffic, known as soon as a unit arrives).
            ``censored``
                Of those, the units whose window was still open at
                :attr:`data_end` (0 with ``censoring="naive"``).
            ``reached_<step>``, for every step
                Resolved units of the period that reached the step
                (``depth > k``, as :meth:`units_sql` with ``reached``).
                Every unit reaches the first step, so ``reached_<first>`` =
                ``units - censored``.
            ``complete``
                False when some entrant of the period may still convert: the
                period's end plus the window is after :attr:`data_end`, so
                its counts are provisional. Always True with
                ``censoring="naive"``, which takes every window as closed.

            Counts are int64. Empty when the funnel has no unit.

        Raises
        ------
        ValueError
            If ``freq`` is not one of the three.
        """
        if freq not in PERIOD_LENGTH:
            raise ValueError(f"freq must be one of {', '.join(map(repr, PERIOD_LENGTH))}, got {freq!r}")
        n = len(self.step_names)
        reached = ", ".join(f"count(*) FILTER (WHERE {_unit_condition(reached=k)}) AS r{k}" for k in range(n))
        frame = self.events.query(
            f"WITH p AS (SELECT *, date_trunc('{freq}', make_timestamp(entry)) AS period FROM {self.units_table}) "
            f"SELECT period, count(*) AS units, count(*) FILTER (WHERE {_unit_condition(resolved=False)}) AS censored, "
            f"{reached} FROM p GROUP BY period ORDER BY period"
        )
        frame = frame.rename(columns={f"r{k}": f"reached_{name}" for k, name in enumerate(self.step_names)})
        counts = [c for c in frame.columns if c != "period"]
        frame[counts] = frame[counts].astype("int64")
        frame["period"] = pd.to_datetime(frame["period"], utc=True)  # naive on DuckDB (make_timestamp), UTC
        if empty_periods and len(frame):
            calendar = pd.date_range(frame["period"].iloc[0], frame["period"].iloc[-1], freq=_CALENDAR_FREQ[freq])
            frame = (frame.set_index("period").reindex(calendar.astype(frame["period"].dtype), fill_value=0)
                     .rename_axis("period").reset_index())
        if self.spec.censoring == "naive":
            frame["complete"] = True
        else:
            frame["complete"] = frame["period"] + PERIOD_LENGTH[freq] + pd.Timedelta(self.spec.window) <= self.data_end
        return frame

    def trend(self, freq: str | None = None) -> pd.DataFrame:
        """Conversion by period of entry (``day`` or ``week``, weeks start Monday, UTC).

        Columns: ``period`` (start, UTC), ``entrants``, ``converted``,
        ``conversion`` with Wilson ``ci_low``/``ci_high``, ``censored``
        (units of the period whose window is still open, left out of the
        counts) and ``complete`` (False when some entrant of the period may
        still convert: the period's last possible entry plus the window ends
        after the data, so the point is provisional). The counts are
        :meth:`by_period`'s; periods with no entrant have no row.
        """
        periods = self.by_period(freq or self.spec.trend_freq)
        entrants = periods[f"reached_{self.step_names[0]}"]
        converted = periods[f"reached_{self.step_names[-1]}"]
        rates = rate_frame(converted, entrants)
        return pd.DataFrame({
            "period": periods["period"], "entrants": entrants, "converted": converted,
            "conversion": rates["rate"].to_numpy(), "ci_low": rates["ci_low"].to_numpy(),
            "ci_high": rates["ci_high"].to_numpy(), "censored": periods["censored"], "complete": periods["complete"],
        })

    def durations(self, step: str | int, from_step: str | int | None = None) -> pd.Series:
        """Seconds from ``from_step`` (default: the previous step) to ``step``,
        one value per resolved unit that reached ``step``."""
        k = self.step_index(step)
        j = k - 1 if from_step is None else self.step_index(from_step)
        if not 0 <= j < k:
            raise ValueError(f"from_step must come before step {step!r}")
        frame = self.events.query(
            f"SELECT (T{k} - T{j}) / 1e6 AS seconds FROM {self.units_sql(reached=k)} AS u ORDER BY seconds"
        )
        return frame["seconds"].rename(f"{self.step_names[j]} → {self.step_names[k]} (s)")

    def step_durations(self) -> dict[str, pd.Series]:
        """:meth:`durations` for every step after the first, keyed 'previous → step'."""
        out = {}
        for k in range(1, len(self.step_names)):
            series = self.durations(k)
            out[f"{self.step_names[k - 1]} → {self.step_names[k]}"] = series
        return out

    def plot(self, ax=None, unit: str = "units"):
        """Funnel chart of :attr:`steps` (delegates to ``funnelkit.plots``)."""
        from ..plots import funnel_chart

        return funnel_chart(self.steps, ax=ax, unit=unit)


def _unit_condition(*, resolved: bool | None = True, reached: int | None = None, furthest: int | None = None) -> str:
    """SQL condition on the per-unit table's columns (see :meth:`FunnelResult.units_sql`; steps by position)."""
    conditions = {True: ["NOT censored"], False: ["censored"], None: []}[resolved]
    if reached is not None:
        conditions.append(f"depth > {int(reached)}")
    if furthest is not None:
        conditions.append(f"depth = {int(furthest) + 1}")
    return " AND ".join(conditions) or "TRUE"


def _micros_to_timedelta(value) -> pd.Timedelta:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return pd.NaT
    return pd.Timedelta(microseconds=float(value))
