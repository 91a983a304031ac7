"""Retention, cohorts, lifecycle and customer value (notebook 06), with unfinished periods kept apart.

:func:`run` (:mod:`.study`) is the study in one call and returns a :class:`RetentionResults`.
Underneath: :mod:`.activity` builds the small tables in the log's engine (cohort counts,
lifecycle patterns, one row per user and per customer); :mod:`.cohorts` the cohort matrix
with Wilson intervals and in-progress cells; :mod:`.survival` Kaplan–Meier curves of time to
return and to repurchase (censored at the end of the data) and the log-rank test;
:mod:`.lifecycle` new / returning / resurrecting / dormant users per period; :mod:`.clv` the
BG/NBD and Gamma-Gamma customer-value models, derived and fitted by maximum likelihood.
"""
from .study import RetentionResults, run

__all__ = ["RetentionResults", "run"]
