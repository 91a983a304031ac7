"""What every study returns: its figures as :class:`Metric` rows, a headline, a summary.

A study (``funnel.study``, ``drivers``, ``recommend``, ``anomaly``, ...) is a
function ``run(events, spec, ...)`` taking the event log and its params
section, and returning a results object derived from :class:`StudyResults`
with the study's tables as attributes, in the style of statsmodels' results:

- ``metrics()``: the figures the study reports, each a :class:`Metric`
  (the notebook records them with :func:`funnelkit.report.record_metrics`);
- ``headline()``: the findings in plain language (Markdown), headline first,
  every string from the data escaped (:mod:`funnelkit.text`);
- ``summary()``: the metrics as a table to read.

A study never imports ``plots``, ``tables``, ``report`` or the simulator:
the notebook hands its results to presentation, and only
``funnelkit.groundtruth`` compares with what the simulator planted.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class Metric:
    """One recorded figure of a study.

    Attributes
    ----------
    name : str
        Identifier-like key (``overall_conversion``): tests and the index page look figures up by it.
    value : number, str, bool or None
        The figure.
    unit : str, optional
        As in :func:`funnelkit.report.record`: ``"share"``/``"share of <units>"``, ``"pp"``, a currency
        code, a count unit, ...
    label : str, optional
        Readable name for people.
    ci : (low, high), optional
        95% confidence interval in the unit of ``value``.
    headline : bool
        A business figure for the report's index card.
    """

    name: str
    value: Any
    unit: str | None = None
    label: str | None = None
    ci: tuple | None = None
    headline: bool = False


class StudyResults:
    """Base of the studies' results objects: ``metrics()`` and ``headline()`` are the study's own."""

    def metrics(self) -> list[Metric]:  # pragma: no cover - every study defines it
        raise NotImplementedError

    def headline(self) -> str:  # pragma: no cover - every study defines it
        raise NotImplementedError

    def summary(self) -> pd.DataFrame:
        """The study's figures as a table: name, label, value, unit, 95% CI low/high, headline."""
        rows = [{"name": m.name, "label": m.label or m.name, "value": m.value, "unit": m.unit,
                 "ci_low": m.ci[0] if m.ci else None, "ci_high": m.ci[1] if m.ci else None,
                 "headline": m.headline} for m in self.metrics()]
        return pd.DataFrame(rows, columns=["name", "label", "value", "unit", "ci_low", "ci_high", "headline"])
