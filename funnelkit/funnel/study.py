"""The funnel study (notebook 01): where the shop loses its visitors, and what its worst step is worth.

:func:`run` computes everything the funnel report shows from the event log and
``params.funnel``: the funnel of users (or sessions), its worst step and what
lifting that step to its best segment's rate could bring, the breakdowns by
segment, the times between steps, the weekly trend of sessions, what people do
instead of the next step, and the event counts of the data-quality section.
The notebook hands the tables to ``funnelkit.tables`` and ``funnelkit.plots``.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..event_types import funnel_event_types
from ..eventlog import EventLog
from ..params import FunnelParams
from ..profile import daily_event_counts, event_mix
from ..study import Metric, StudyResults
from ..text import MINUS, duration, escape_md, money, pct
from .engine import run_funnel
from .lift import StepLift, lift_to_best_segment
from .paths import dropoff_paths, transition_matrix
from .result import Breakdown, FunnelResult


@dataclass
class FunnelStudy(StudyResults):
    """The outcome of :func:`run`.

    Attributes
    ----------
    result : FunnelResult
        The funnel of ``spec.unit`` (users by default): steps, censored units, durations.
    unit : str
        Plural name of the unit counted (``users``, ``sessions``), for labels and prose.
    currency : str
        The data's currency (``data.currency``) for money figures.
    worst : Series
        The row of ``result.steps`` with the lowest step conversion (:meth:`FunnelResult.worst_step`).
    previous : str
        The step before the worst one.
    lift : StepLift
        What the worst step would bring at its best segment's rate
        (:func:`funnelkit.funnel.lift_to_best_segment` over ``spec.breakdowns``); its ``reason``
        says why a figure is missing (no segments, no prices).
    logged_revenue : float
        Every last-step event's price in the log (:meth:`FunnelResult.logged_revenue`), for scale.
    breakdowns : list of Breakdown
        One per ``spec.breakdowns`` column, values under ``spec.min_segment_units`` pooled.
    step_durations : dict of str to Series
        Seconds between consecutive steps (:meth:`FunnelResult.step_durations`).
    trend : DataFrame
        Conversion of **sessions** by period of entry (``spec.trend_freq``): the same funnel run per
        session (:meth:`FunnelResult.trend`). Sessions, because a trend of users counted from their
        first visit falls even when nothing changes (the log has no history before its start).
    transitions : DataFrame
        Counts of the next event type after each event type, per ``spec.unit``
        (:func:`funnelkit.funnel.transition_matrix`).
    dropoff_paths : DataFrame
        The commonest paths of units that reached :attr:`previous` and went no further
        (:func:`funnelkit.funnel.dropoff_paths`).
    event_mix, daily_counts : DataFrame
        Events (and users) by event type, and events per day and type (:mod:`funnelkit.profile`).
    step_events : list of str
        The steps' event types in step order: the ones a chart of event types always names.
    """

    result: FunnelResult
    unit: str
    currency: str
    worst: pd.Series
    previous: str
    lift: StepLift
    logged_revenue: float
    breakdowns: list[Breakdown]
    step_durations: dict[str, pd.Series]
    trend: pd.DataFrame
    transitions: pd.DataFrame
    dropoff_paths: pd.DataFrame
    event_mix: pd.DataFrame
    daily_counts: pd.DataFrame
    step_events: list[str]

    def metrics(self) -> list[Metric]:
        """The funnel's figures: overall and worst-step conversion, the lift, entrants, censored, events.

        The index card (``headline=True``) shows the two conversions and, when the log has the prices
        and segments for it, the lift in money beside what converting units spent; else the lift in
        units when there is one. A log without them gets no "n/a" on the card.
        """
        result, lift, worst, unit = self.result, self.lift, self.worst, self.unit
        overall, last = result.overall, result.step_names[-1]
        has_revenue = lift.reason is None and lift.revenue_reason is None and not pd.isna(lift.extra_revenue)
        return [
            Metric("overall_conversion", overall["conversion"], unit="share of entrants", headline=True,
                   label=f"Overall conversion, {result.step_names[0]} → {last}",
                   ci=(overall["ci_low"], overall["ci_high"])),
            Metric("worst_step_conversion", float(worst["step_conversion"]), unit=f"share of {unit} at {self.previous}",
                   label=f"Worst step: {self.previous} → {worst['step']}, share who went on", headline=True,
                   ci=(float(worst["step_ci_low"]), float(worst["step_ci_high"]))),
            Metric("lift_revenue_at_worst_step", lift.extra_revenue, unit=self.currency, ci=lift.revenue_ci,
                   label=f"Revenue {unit} would add if {worst['step']} converted as for its best segment",
                   headline=has_revenue),
            Metric("converted_revenue", lift.converted_revenue, unit=self.currency, headline=has_revenue,
                   label=f"Spent by the {unit} who reached {last}, at that step (actual)"),
            Metric("lift_conversions_at_worst_step", lift.extra_conversions, unit=unit, ci=lift.conversions_ci,
                   label=f"More {unit} reaching {last} if {worst['step']} converted as for its best segment",
                   headline=lift.reason is None and not has_revenue),
            Metric("worst_step", worst["step"], label="Worst step"),
            Metric("entrants", overall["entrants"], unit=unit, label="Entrants (window closed)"),
            Metric("censored_units", self.censored_units, unit=unit, label="Still in window (censored)"),
            Metric("events", int(self.event_mix["events"].sum()), unit="events", label="Events analysed"),
        ]

    @property
    def censored_units(self) -> int:
        """Units whose window had not closed when the data ends: left out of every rate."""
        return int(self.result.censored["units"].sum())

    def headline(self) -> str:
        """The report's opening lines in plain language (Markdown), true of any log.

        Overall conversion, the worst step, what improving it could bring (or why that cannot be
        estimated: no segments, no prices) and the censored units; every name from the data or the
        params escaped.
        """
        result, worst, unit = self.result, self.worst, self.unit
        overall = result.overall
        first, last = escape_md(result.step_names[0]), escape_md(result.step_names[-1])
        window = duration(pd.Timedelta(result.spec.window))
        step, previous = escape_md(worst["step"]), escape_md(self.previous)
        lines = [
            f"- **Overall conversion**: **{pct(overall['conversion'], 2)} of {unit}** (95% CI "
            f"{pct(overall['ci_low'], 2)}–{pct(overall['ci_high'], 2)}) went from {first} to {last} within {window}, "
            f"out of {overall['entrants']:,} {unit} whose window of {window} had closed.",
            f"- **Worst step**: {step}: only **{pct(worst['step_conversion'])} of {unit}** at {previous} (95% CI "
            f"{pct(worst['step_ci_low'])}–{pct(worst['step_ci_high'])}) went on to {step}; "
            f"{int(worst['drop_off']):,} {unit} were lost there.",
            f"- **What improving {step} could bring**: " + self._lift_sentence(last),
        ]
        if self.censored_units:
            lines.append(
                f"- {self.censored_units:,} {unit} entered too recently for their window to close; they are reported "
                f"separately, not counted as lost."
            )
        return "\n".join(lines)

    def _lift_sentence(self, last: str) -> str:
        """The lift of the worst step in words: figures with intervals, actual revenue beside, then the assumption.

        A lift whose interval reaches zero is said to be no measurable gain, never "about N more".
        ``last`` is the last step's name, escaped.
        """
        lift, unit = self.lift, self.unit
        if lift.reason is not None:
            return f"not estimated: {escape_md(lift.reason)}."
        step, segment = escape_md(lift.step), f"{escape_md(lift.segment)} = {escape_md(lift.value)}"
        low, high = lift.conversions_ci
        interval = f"95% CI {_signed(low)} to {_signed(high)}"
        assumption = (f"that {step} converts for all {unit} as it does today for its best segment, {segment} "
                      f"({pct(lift.best_rate)} of its {lift.best_units:,} {unit}, against {pct(lift.rate)} overall), "
                      f"and that the extra {unit} then go on like those who pass {step} today")
        if not low > 0:
            return (f"**no measurable gain**: the interval includes zero (about {_signed(lift.extra_conversions)} more "
                    f"{unit} reaching {last}, {interval}), assuming {assumption}.")
        figures = f"about **{lift.extra_conversions:,.0f} more {unit} reaching {last}** ({interval})"
        if lift.revenue_reason is not None or pd.isna(lift.extra_revenue):
            return (f"{figures}, assuming {assumption}. The revenue cannot be computed: "
                    f"{escape_md(lift.revenue_reason or 'no prices')}.")

        def amount(value: float) -> str:
            return money(value, self.currency, markdown=True)

        low, high = lift.revenue_ci
        revenue_ci = "" if pd.isna(low) or pd.isna(high) else f" (95% CI {_signed(low)} to {amount(high)})"
        text = (f"{figures} and **{amount(lift.extra_revenue)} more revenue**{revenue_ci}, "
                f"beside the {amount(lift.converted_revenue)} that the {lift.converted:,} {unit} who reached {last} "
                f"spent there")
        if not pd.isna(self.logged_revenue):
            text += f" (all {last} events in the log: {amount(self.logged_revenue)})"
        return (text + f". This assumes {assumption}, spending {amount(lift.revenue_per_conversion)} per "
                f"{unit.removesuffix('s')} reaching {last}.")


def _signed(value: float) -> str:
    """A count that may be negative, rounded, with a real minus sign ("−3", not "-3")."""
    return f"{value:,.0f}".replace("-", MINUS)


def run(events: EventLog, spec: FunnelParams, *, currency: str = "") -> FunnelStudy:
    """Run the funnel study on ``events``.

    Parameters
    ----------
    events : EventLog
        The run's events (:func:`funnelkit.engines.open_events`).
    spec : FunnelParams
        ``params.funnel``: steps, window, unit, breakdowns, ``min_segment_units``, ``trend_freq``.
    currency : str
        ``params.data.currency``, for the money figures.

    Returns
    -------
    FunnelStudy
        The funnel and every table the report shows (see its attributes).
    """
    result = run_funnel(events, spec)
    unit = f"{spec.unit}s"
    worst = result.worst_step()
    k = result.step_names.index(worst["step"])
    return FunnelStudy(
        result=result,
        unit=unit,
        currency=currency,
        worst=worst,
        previous=result.step_names[k - 1],
        lift=lift_to_best_segment(result, spec.breakdowns, step=worst["step"], min_units=spec.min_segment_units,
                                  unit=unit),
        logged_revenue=result.logged_revenue(),
        breakdowns=[result.breakdown(column, min_units=spec.min_segment_units) for column in spec.breakdowns],
        step_durations=result.step_durations(),
        trend=run_funnel(events, spec, unit="session").trend(),
        transitions=transition_matrix(events, unit=spec.unit, normalize=False),
        dropoff_paths=dropoff_paths(result, k - 1),
        event_mix=event_mix(events),
        daily_counts=daily_event_counts(events),
        step_events=funnel_event_types(spec),
    )
