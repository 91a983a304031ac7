"""Anomaly studies: days when a funnel step breaks, and accounts that are not shoppers.

:func:`run` (:mod:`.study`) is the study in one call: it returns an :class:`AnomalyResults` with the
tables, figures (``metrics()``) and headline. Underneath, :mod:`.kpi` builds hourly and daily funnel KPI
series from the funnel engine and runs the detectors on them (3-sigma, robust z, STL/MSTL residuals, a
rate-aware binomial / beta-binomial test), :mod:`.incidents` runs them on every step and scores them
against known incidents; :mod:`.behaviour` computes per-user behaviour features from the event log and
scores users with rules, unsupervised detectors and a supervised model; :mod:`.impact` measures how much
flagged traffic distorts conversion and what false flags cost.
"""
from .study import AnomalyResults, run

__all__ = ["AnomalyResults", "run"]
