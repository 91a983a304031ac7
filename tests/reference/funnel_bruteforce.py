"""Brute-force funnel: the semantics of ``funnelkit.funnel`` written as plain loops.

Slow on purpose and independent of the SQL engine: it works on raw event
rows (no de-duplication, no ASOF joins, no window functions), enumerates
every attempt of every unit and follows the documented rules literally,
for both entry rules (``first``: one window per unit; ``every``: one per attempt).
Times are integer microseconds.
"""
from __future__ import annotations

import math

import pandas as pd

from funnelkit.params import FunnelParams
from funnelkit.schema import COLUMNS


def _matches(row, event_types, filters) -> bool:
    if row[COLUMNS.event_type] not in event_types:
        return False
    for f in filters:
        value = row[f.column]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False  # SQL: a comparison with NULL is never true
        ops = {
            "==": lambda v: v == f.value,
            "!=": lambda v: v != f.value,
            "<": lambda v: v < f.value,
            "<=": lambda v: v <= f.value,
            ">": lambda v: v > f.value,
            ">=": lambda v: v >= f.value,
            "in": lambda v: v in f.value,
            "not_in": lambda v: v not in f.value,
        }
        if not ops[f.op](value):
            return False
    return True


def _us(ts) -> int:
    return pd.Timestamp(ts).value // 1000


def _attempt_times(mode, step_times, all_hits, start, n):
    """Step times (list, None where not found) of the attempt starting at ``start``."""
    if mode == "ordered":
        times = [start]
        for k in range(1, n):
            later = [t for t in step_times[k] if times[-1] is not None and t >= times[-1]]
            times.append(min(later) if later else None)
        return times, start
    if mode == "strict":
        # the unit's funnel events in order: time, then funnel order; repeats
        # of the same step at one instant are one event
        sequence = sorted(set(all_hits))
        i = sequence.index((start, 0))
        times = [start]
        for k in range(1, n):
            nxt = sequence[i + k] if i + k < len(sequence) else None
            ok = nxt is not None and nxt[1] == k and times[-1] is not None
            times.append(nxt[0] if ok else None)
        return times, start
    # any_order: first hit of each step at or after the attempt start,
    # T_k = time the prefix 0..k was complete
    firsts = [min([t for t in step_times[k] if t >= start], default=None) for k in range(n)]
    times = []
    for k in range(n):
        prefix = firsts[: k + 1]
        times.append(None if any(t is None for t in prefix) else max(prefix))
    return times, start, firsts


def unit_results(frame: pd.DataFrame, spec: FunnelParams, data_end) -> pd.DataFrame:
    """One row per entering unit: unit, entry, start, depth, censored, T0..T{n-1}."""
    n = len(spec.steps)
    unit_col = COLUMNS.user_id if spec.unit == "user" else COLUMNS.session_id
    window = int(spec.window.total_seconds() * 1e6)
    end = _us(data_end)
    names = [s.name for s in spec.steps]
    rows = []
    for unit, events in frame.groupby(unit_col, sort=True):
        records = events.to_dict("records")
        step_times = [[_us(r[COLUMNS.event_time]) for r in records if _matches(r, s.events, s.filters)] for s in spec.steps]
        excl_times = [[_us(r[COLUMNS.event_time]) for r in records if _matches(r, e.events, e.filters)] for e in spec.exclusions]
        all_hits = [(t, k) for k in range(n) for t in step_times[k]]
        if spec.mode == "any_order":
            starts = sorted({t for t, _ in all_hits})
        else:
            starts = sorted(set(step_times[0]))
        candidates = []
        for start in starts:
            out = _attempt_times(spec.mode, step_times, all_hits, start, n)
            candidates.append((start, out[0], out[2] if spec.mode == "any_order" else out[0]))
        # the unit enters with its first attempt that finds the first step within its window;
        # every step of every attempt must happen by the end of the unit's window
        entries = [start for start, _, found in candidates if found[0] is not None and found[0] - start <= window]
        if not entries:
            continue
        entry = min(entries)
        censored = spec.censoring != "naive" and entry + window > end
        attempts = []
        for start, times, found in candidates:
            # entry "first": the unit's window bounds every attempt; "every": each attempt has its own
            window_end = entry + window if spec.entry == "first" else start + window
            if spec.entry == "every" and spec.censoring != "naive" and not censored and start + window > end:
                continue  # a resolved unit counts only attempts whose window closed by the data end
            depth = 0
            for k in range(n):
                if found[k] is None or found[k] - start > window or found[k] > window_end:
                    break
                max_time = spec.steps[k].max_time
                if k > 0 and max_time is not None and times[k] - times[k - 1] > max_time.total_seconds() * 1e6:
                    break
                depth = k + 1
            if depth == 0:
                continue
            times = [t if k < depth else None for k, t in enumerate(times)]
            if _excluded(spec, names, excl_times, times, depth, window_end):
                continue
            attempts.append((start, depth, times))
        if not attempts:
            continue
        best_depth = max(d for _, d, _ in attempts)
        start, depth, times = min((a for a in attempts if a[1] == best_depth), key=lambda a: a[0])
        rows.append({"unit": unit, "entry": entry, "start": start, "depth": depth, "censored": censored,
                     **{f"T{k}": times[k] for k in range(n)}})
    return pd.DataFrame(rows, columns=["unit", "entry", "start", "depth", "censored"] + [f"T{k}" for k in range(n)])


def _excluded(spec, names, excl_times, times, depth, window_end) -> bool:
    for exc, hits in zip(spec.exclusions, excl_times):
        a, b = (0, len(names) - 1) if exc.between is None else (names.index(exc.between[0]), names.index(exc.between[1]))
        if depth <= a:
            continue
        for x in hits:
            if x <= times[a]:
                continue
            if (depth > b and x < times[b]) or (depth <= b and x <= window_end):
                return True
    return False


def step_counts(units: pd.DataFrame, n: int) -> list[int]:
    """Resolved units reaching each step."""
    resolved = units[~units["censored"].astype(bool)]
    return [int((resolved["depth"] > k).sum()) for k in range(n)]


def breakdown_counts(frame: pd.DataFrame, units: pd.DataFrame, spec: FunnelParams, column: str,
                     attribution: str) -> dict:
    """``{value: [units reaching step 0, step 1, ...]}`` over the uncensored units of :func:`unit_results`.

    A unit's value is ``column`` at the event of its attributed step (the first step, or the
    last one it reached) at that step's time; simultaneous events: the smallest value, nulls
    last; ``None`` when it has none.
    """
    n = len(spec.steps)
    unit_col = COLUMNS.user_id if spec.unit == "user" else COLUMNS.session_id
    counts: dict = {}
    for unit in units[~units["censored"]].to_dict("records"):
        k = 0 if attribution == "first_step" else unit["depth"] - 1
        records = frame[frame[unit_col] == unit["unit"]].to_dict("records")
        found = [r[column] for r in records if _us(r[COLUMNS.event_time]) == unit[f"T{k}"]
                 and _matches(r, spec.steps[k].events, spec.steps[k].filters) and r[column] is not None]
        reached = counts.setdefault(min(found) if found else None, [0] * n)
        for step in range(unit["depth"]):
            reached[step] += 1
    return counts
