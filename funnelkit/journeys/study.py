"""The journeys study in one call: :func:`run` returns a :class:`JourneyResults`.

Sessions are walks over page states from ``start`` to ``purchase`` or ``exit``
(:mod:`funnelkit.journeys.paths`); the first-order absorbing chain estimated from their transitions
(:mod:`funnelkit.journeys.chain`) gives the chance to buy from each state, the expected pages to the end,
what removing a state would cost (removal effects) and what changing one transition would be worth.
Every interval is a percentile bootstrap over users (a user's sessions move together, so shoppers who
come back often do not narrow the intervals as if each visit were a new shopper). The second-order
table shows where the previous page changes what happens next: what a first-order chain averages away.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import ParamsError
from ..eventlog import EventLog
from ..params import JourneysParams
from ..schema import EVENTS
from ..study import Metric, StudyResults
from ..text import escape_md, money, pct, pct_ci
from . import chain
from .evaluate import PredictionResults, compare
from .evaluate import percentile_interval as _interval
from .paths import EXIT, OTHER, START, JourneyCounts, check_what_ifs, journey_counts, journey_sequences

ABSORBING = (EVENTS.purchase, EXIT)
MIN_HISTORY_VISITS = 50
"""Fewest visits of a (previous state, state) pair for its own row in the second-order table."""
WEIGHTS_PER_CHUNK = 4_000_000
"""User weights drawn at once (replicates × users), about 32 MB: a million users take 4 replicates at a time."""


@dataclass
class JourneyResults(StudyResults):
    """Everything the journeys study found; built by :func:`run`.

    Attributes
    ----------
    spec : JourneysParams
    currency : str
    counts : JourneyCounts
        The journeys as counted in the engine.
    transient : list of str
        ``start`` then the named states, most visited first: the rows of the chain.
    transitions : DataFrame
        ``from``, ``to``, ``count``, ``probability``, ``ci_low``, ``ci_high``: the first-order chain (every
        observed transition).
    by_state : DataFrame
        One row per state (``start`` first): ``visits``, ``exits`` (visits after which the session ended),
        ``exit_share``, ``purchase_probability`` (the first-order chain's chance that a session at this state
        goes on to buy) and ``expected_pages`` (pages still to come, this one included; for ``start``, the
        pages of a session), each with ``_low``/``_high`` intervals (replicates without the state left out),
        ``removal_effect`` (the chain's relative drop of the session conversion if the state were removed and
        its visitors left instead), and from the data without a chain ``purchases_through`` (the share of
        purchasing journeys that visited the state) and ``visitors_bought`` (the share of the journeys
        visiting it that bought), each with its interval; NaN for ``start``.
    conversion : tuple
        (estimate, low, high): the share of journeys that end in a purchase, from the chain.
    what_ifs : DataFrame
        One row per ``spec.what_if``: ``from``, ``to``, ``change``, ``probability`` and ``new_probability``
        of the transition, ``conversion`` and ``new_conversion`` per session, the extra purchases per 1,000
        sessions (``extra_per_1000`` with its interval) and their value (``extra_value_per_1000``, at the
        log's mean order value).
    history : DataFrame
        Second order: ``previous``, ``state``, ``next``, ``visits`` (of the pair), ``share`` of them going to
        ``next`` with its interval, and ``first_order`` (the share a first-order chain gives every previous
        state), for pairs with at least :data:`MIN_HISTORY_VISITS` visits of states whose next step depends
        on the previous one.
    prediction : PredictionResults or None
        The next-event model comparison (:mod:`funnelkit.journeys.evaluate`); None when not asked for or too
        few journeys on either side of the cut-off (``prediction_note`` says which).
    prediction_note : str or None
    sequences_sampled_from : int or None
        When the models used a sample of the journeys: how many there were.
    """

    spec: JourneysParams
    currency: str
    counts: JourneyCounts
    transient: list
    transitions: pd.DataFrame
    by_state: pd.DataFrame
    conversion: tuple
    what_ifs: pd.DataFrame
    history: pd.DataFrame
    prediction: PredictionResults | None = None
    prediction_note: str | None = None
    sequences_sampled_from: int | None = None

    # ------------------------------------------------------------------ figures
    def metrics(self) -> list[Metric]:
        est, low, high = self.conversion
        out = [Metric("session_conversion", est, "share of sessions", "Sessions that end in a purchase (chain)",
                      _ci(low, high), headline=True),
               Metric("sessions", self.counts.sessions, "sessions", "Sessions (journeys) counted"),
               Metric("unfinished_sessions", self.counts.unfinished, "sessions",
                      "Sessions left out: possibly begun before the log or still going on at its end"),
               Metric("states", len(self.transient) - 1, "states", "Page states of the chain")]
        key = self.key_state()
        if key is not None:
            out.append(Metric("key_state_purchases_through", float(key["purchases_through"]), "share of purchases",
                              f"Sessions that bought having visited {key['state']} (the page besides the funnel's "
                              f"steps with the largest removal effect)",
                              _ci(key["purchases_through_low"], key["purchases_through_high"]), headline=True))
            out.append(Metric("largest_removal_effect", float(key["removal_effect"]), "share of purchases",
                              f"Purchases lost if the {key['state']} state were removed (first-order chain; the "
                              f"largest of the states besides the funnel's steps)",
                              _ci(key["removal_effect_low"], key["removal_effect_high"])))
        leak = self.leak()
        if leak is not None:
            out.append(Metric("largest_leak_exits", int(leak["exits"]), "sessions",
                              f"Sessions that left the shop from the {leak['state']} state"))
        if self.prediction is not None:
            table = self.prediction.next_event.set_index("model")
            out.append(Metric("next_best_chain", self.prediction.baseline,
                              label="The better Markov chain at predicting the next page (the models' baseline)"))
            for name, row in table.iterrows():
                key = _key(name)
                if name != self.prediction.baseline:
                    out.append(Metric(f"next_log_loss_vs_best_chain_{key}", float(row["log_loss_diff"]), "nats",
                                      f"Next-page log-loss of the {name} minus the better chain's (above 0: worse)",
                                      _ci(row["log_loss_diff_low"], row["log_loss_diff_high"])))
                out.append(Metric(f"next_log_loss_{key}", float(row["log_loss"]), "nats",
                                  f"Next-page log-loss of the {name} on the test journeys",
                                  _ci(row["log_loss_low"], row["log_loss_high"])))
                out.append(Metric(f"next_top1_{key}", float(row["top1"]), "share of predictions",
                                  f"Next page named right by the {name}", _ci(row["top1_low"], row["top1_high"])))
        for n, row in enumerate(self.what_ifs.itertuples()):
            key = f"what_if_{_key(row[1])}_{_key(row[2])}"
            key += "" if n == 0 or key not in {m.name for m in out} else f"_{n + 1}"  # the same transition twice
            out.append(Metric(key, float(row.extra_per_1000),
                              "purchases per 1,000 sessions",
                              f"Extra purchases if {row[1]} → {row[2]} changed by {row.change:+.0%}",
                              _ci(row.extra_per_1000_low, row.extra_per_1000_high), headline=n == 0))
        return out

    def key_state(self) -> pd.Series | None:
        """Of the pages a purchase can do without, the one whose removal would cost the most purchases.

        The funnel's steps (``view``, ``cart``, ``checkout``) and any state on every purchase's path have a
        removal effect of (nearly) 100% by construction, which says nothing, and ``other`` is a bucket of
        rare pages, not a page; None without purchases or when no other state is left.
        """
        states = self.by_state[~self.by_state["state"].isin([START, OTHER, *EVENTS.funnel])
                               & self.by_state["removal_effect"].notna()]
        states = states[states["removal_effect"] < 1 - 1e-9]
        return None if states.empty else states.loc[states["removal_effect"].idxmax()]

    def leak(self) -> pd.Series | None:
        """The state most sessions left the shop from."""
        states = self.by_state[self.by_state["state"] != START]
        return None if states.empty or states["exits"].max() == 0 else states.loc[states["exits"].idxmax()]

    def headline(self) -> str:
        est, low, high = self.conversion
        n = self.counts.sessions
        if n == 0:
            return ("**No complete session to follow**: every session of the log may have begun before it or "
                    "still be going on at its end (within the session gap of its first or last event).")
        lines = [f"- **{pct_ci(est, low, high)} of sessions end in a purchase** ({n:,} sessions; "
                 f"{self.counts.unfinished:,} unfinished ones at the log's edges left out)."]
        if not (self.counts.triples["state"] == EVENTS.purchase).any():
            lines.append("- **No session bought**: there is no `purchase` event, so the chain has no purchase to "
                         "lead to. If your log names its order event differently, map it with "
                         "`data.event_names` (e.g. `{payment_done: purchase}`).")
            return "\n".join(lines)
        states = self.by_state[self.by_state["state"] != START]
        best = states.loc[states["purchase_probability"].idxmax()]
        chance = pct_ci(best["purchase_probability"], best["purchase_probability_low"],
                        best["purchase_probability_high"])
        lines.append(f"- **Closest to a purchase: {escape_md(best['state'])}**: a session that reaches it buys "
                     f"{chance} of the time.")
        leak = self.leak()
        if leak is not None:
            total = states["exits"].sum()
            lines.append(f"- **Biggest leak: {escape_md(leak['state'])}**: {leak['exits']:,.0f} sessions "
                         f"({pct(leak['exits'] / total)} of those that left without buying) ended there; "
                         f"{pct(leak['exit_share'])} of its visits are the session's last.")
        key = self.key_state()
        if key is not None:
            always = [s for s in self.by_state["state"] if s not in (START, *EVENTS.funnel)
                      and self.by_state.set_index("state").at[s, "removal_effect"] >= 1 - 1e-9]
            besides = "the funnel's steps" + (f" and the pages every purchase passes through "
                                              f"({', '.join(escape_md(s) for s in always)})" if always else "")
            through = pct_ci(key["purchases_through"], key["purchases_through_low"], key["purchases_through_high"])
            removal = pct_ci(key["removal_effect"], key["removal_effect_low"], key["removal_effect_high"])
            lines.append(f"- **Purchases depend most on {escape_md(key['state'])}** (besides {besides}): "
                         f"{through} of the sessions that bought visited it. The first-order chain's removal "
                         f"effect, the purchases lost if it were removed and its visitors left, is {removal}; the "
                         f"chain sees only the current page, so a gap between the two is history it cannot see.")
        for _, row in self.what_ifs.iterrows():
            value = ("" if np.isnan(row["extra_value_per_1000"]) else
                     f", about {money(row['extra_value_per_1000'], self.currency, markdown=True)} per 1,000 sessions "
                     f"(95% CI {money(row['extra_value_per_1000_low'], self.currency, markdown=True)} to "
                     f"{money(row['extra_value_per_1000_high'], self.currency, markdown=True)}) at the mean order "
                     f"value, held fixed")
            digits = _digits(row["extra_per_1000_low"], row["extra_per_1000_high"])
            lines.append(f"- **What if {escape_md(row['from'])} → {escape_md(row['to'])} changed by "
                         f"{row['change']:+.0%}** ({pct(row['probability'])} → {pct(row['new_probability'])}): "
                         f"{row['extra_per_1000']:+.{digits}f} purchases per 1,000 sessions (95% CI "
                         f"{row['extra_per_1000_low']:+.{digits}f} to {row['extra_per_1000_high']:+.{digits}f})"
                         f"{value}.")
        lines += self._prediction_lines()
        strongest = self.strongest_history()
        if strongest is not None:
            lines.append(f"- **The previous page matters at {escape_md(strongest['state'])}**: {strongest['text']}; "
                         f"a first-order chain averages these into {pct(strongest['first_order'])}.")
        return "\n".join(lines)

    def _prediction_lines(self) -> list[str]:
        result = self.prediction
        if result is None:
            return []
        table = result.next_event.set_index("model")
        base = table.loc[result.baseline]
        right = pct_ci(base["top1"], base["top1_low"], base["top1_high"])
        lines = [f"- **Predicting the next page** (journeys after {result.cutoff:%Y-%m-%d}, models fitted before): the "
                 f"{readable(result.baseline)} names it right {right} of the time (log-loss "
                 f"{base['log_loss']:.3f} nats, 95% CI {base['log_loss_low']:.3f} to {base['log_loss_high']:.3f})."]
        others = table.drop(index=result.baseline)
        better = others[others["log_loss_diff_high"] < 0]
        if len(better):
            best = better["log_loss"].idxmin()
            row = better.loc[best]
            lines[-1] += (f" The {readable(best)} does better: log-loss lower by {-row['log_loss_diff']:.4f} nats "
                          f"(95% CI {-row['log_loss_diff_high']:.4f} to {-row['log_loss_diff_low']:.4f}).")
        else:
            lines[-1] += (" No other model beats it; their log-loss against it, in nats: " + ", ".join(
                f"{readable(name)} {row['log_loss_diff']:+.4f} (95% CI {row['log_loss_diff_low']:+.4f} to "
                f"{row['log_loss_diff_high']:+.4f})" for name, row in others.iterrows()) + ".")
        return lines

    def strongest_history(self) -> dict | None:
        """The (state, next) whose share differs most between two previous states, in words."""
        if self.history.empty:
            return None
        spread = (self.history.groupby(["state", "next"])["share"].agg(["min", "max"])
                  .assign(gap=lambda d: d["max"] - d["min"]).sort_values("gap", ascending=False, kind="stable"))
        (state, nxt), top = spread.index[0], spread.iloc[0]
        if top["gap"] < 0.05:
            return None
        rows = self.history[(self.history["state"] == state) & (self.history["next"] == nxt)]
        high, low = rows.loc[rows["share"].idxmax()], rows.loc[rows["share"].idxmin()]
        go = "leads out of the shop" if nxt == EXIT else f"leads to {escape_md(nxt)}"
        text = (f"after {escape_md(high['previous'])}, {escape_md(state)} {go} "
                f"{pct_ci(high['share'], high['share_low'], high['share_high'])} of the time; after "
                f"{escape_md(low['previous'])}, {pct_ci(low['share'], low['share_low'], low['share_high'])}")
        return {"state": state, "next": nxt, "text": text, "first_order": float(rows["first_order"].iloc[0])}


def _key(name: str) -> str:
    """An identifier-like piece of a metric's key: "Markov, first order" → "markov_first_order"."""
    return re.sub(r"[^a-z0-9]+", "_", str(name).lower()).strip("_")


def readable(model: str) -> str:
    """A model's name in a sentence: "Markov, second order" → "second-order Markov chain"."""
    if model.startswith("Markov, "):
        return f"{model.split(', ')[1].replace(' ', '-')} Markov chain"
    return {"LSTM": "LSTM"}.get(model, model[0].lower() + model[1:])


def _digits(low: float, high: float) -> int:
    """Decimals that show an interval's width (at least one, at most three)."""
    width = abs(high - low)
    return 1 if not np.isfinite(width) or width >= 0.1 else min(3, int(np.ceil(-np.log10(max(width, 1e-3)))))


def _ci(low, high):
    return None if low is None or np.isnan(low) or np.isnan(high) else (float(low), float(high))


# ---------------------------------------------------------------------- the computation

def _user_matrix(frame: pd.DataFrame, keys: list[tuple], key_columns: list[str], n_users: int,
                 value: str = "n"):
    """Sparse users × keys matrix: the sum of ``frame[value]`` per ``user`` and key (``keys`` in order, tuples of
    ``key_columns`` values); rows of keys not asked for are left out."""
    from scipy import sparse

    grouped = frame.groupby(["user", *key_columns], dropna=False)[value].sum()
    column = pd.MultiIndex.from_tuples(keys, names=key_columns).get_indexer(
        pd.MultiIndex.from_arrays([grouped.index.get_level_values(c) for c in key_columns]))
    users = grouped.index.get_level_values("user").to_numpy()
    kept = column >= 0
    return sparse.csr_matrix((grouped.to_numpy(float)[kept], (users[kept], column[kept])),
                             shape=(n_users, len(keys)))


def _users(counts: JourneyCounts) -> int:
    """How many users the journeys have (they are numbered from 0)."""
    return int(counts.triples["user"].max()) + 1 if len(counts.triples) else 0


def _bootstrap(matrices: list, replicates: int, seed: int) -> list[np.ndarray]:
    """Replicate totals (replicates × keys) of each users × keys matrix: users resampled with Poisson(1) weights
    (Hanley & MacGibbon 2006), the Poisson bootstrap: each user's sessions enter a replicate 0, 1, 2, ... times
    together.

    Every matrix gets the same replicates (one draw of weights): drawing them is most of the cost (about 12 s
    per 500 replicates of a million users), and the study's intervals then come from the same resampled users.
    """
    from scipy import sparse

    widths = [m.shape[1] for m in matrices]
    matrix = sparse.hstack(matrices).tocsr()
    rng = np.random.default_rng(seed)
    out = []
    chunk = max(1, min(replicates, WEIGHTS_PER_CHUNK // max(matrix.shape[0], 1)))
    for start in range(0, replicates, chunk):
        size = min(chunk, replicates - start)
        weights = rng.poisson(1.0, size=(size, matrix.shape[0])).astype(np.float64)
        out.append(np.asarray((matrix.T @ weights.T).T))
    totals = np.concatenate(out) if out else np.zeros((0, matrix.shape[1]))
    return np.split(totals, np.cumsum(widths)[:-1], axis=1)


def run(events: EventLog, spec: JourneysParams, *, currency: str = "", session_gap_minutes: float = 30.0,
        truth=None) -> JourneyResults:
    """Count the journeys of ``events`` and fit the absorbing chain (see the module docstring).

    Parameters
    ----------
    events : EventLog
    spec : JourneysParams
        ``params.journeys``.
    currency : str
        Of the order values (``data.currency``).
    session_gap_minutes : float
        ``data.session_gap_minutes``: sessions within it of the log's first or last event are unfinished.
    truth : funnelkit.groundtruth.Planted, optional
        The built-in shop's planted truth: its anomalous accounts (bots, click farm, fake orders) are left
        out, as their journeys are not shoppers' journeys.

    Raises
    ------
    ParamsError
        A ``what_if`` naming a state the chain does not have, or a transition never observed.
    """
    if truth is not None:
        events = events.without_users(truth.anomalous_accounts)
    counts = journey_counts(events, spec.states, spec.max_states, session_gap_minutes)
    transient = [START, *counts.states]
    columns = transient + list(ABSORBING)
    k = len(transient)
    code = {s: i for i, s in enumerate(columns)}
    triples = counts.triples
    _check_what_ifs(spec, counts, events.source or "the events")

    pairs = [(a, b) for a in transient for b in columns]
    first = _user_matrix(triples, pairs, ["previous", "state"], _users(counts))
    observed = np.asarray(first.sum(axis=0)).ravel().reshape(k, len(columns))
    passing = _passing_matrix(counts)
    history_keys, history_matrix = _history_matrix(counts, columns)
    draws, passing_draws, history_draws = _bootstrap([first, passing, history_matrix], spec.bootstrap, spec.seed)
    draws = draws.reshape(-1, k, len(columns))
    P, P_draws = chain.transition_probabilities(observed), chain.transition_probabilities(draws)

    # a state no resampled user visited has no estimate in that replicate (not "everyone leaves from it")
    absent = draws.sum(axis=2) == 0
    transitions = _transitions_table(observed, P, np.where(absent[..., None], np.nan, P_draws), transient, columns)
    by_state, conversion = _by_state(observed, P, P_draws, absent, transient, code)
    by_state = _passing_through(by_state, passing, passing_draws)
    what_ifs = _what_ifs(spec, P, P_draws, code, counts.order_value)
    history = _history(counts, history_keys, history_matrix, history_draws)
    prediction, note, sampled_from = None, None, None
    if spec.predict:
        sequences = journey_sequences(events, counts, spec.max_sessions, spec.seed)
        sampled_from = sequences.sampled_from
        if len(sequences):
            prediction = compare(sequences, test_share=spec.test_share, after=tuple(spec.predict_after),
                                 max_length=spec.max_length, replicates=spec.bootstrap, seed=spec.seed,
                                 lstm=spec.lstm, lstm_journeys=spec.lstm_journeys)
        if prediction is None:
            note = (f"too few journeys to compare models: fewer than 50 began before or after the cut-off at "
                    f"{1 - spec.test_share:.0%} of the log's span")
    else:
        note = "not asked for (journeys.predict: false)"
    return JourneyResults(spec, currency, counts, transient, transitions, by_state, conversion, what_ifs, history,
                          prediction, note, sampled_from)


def _check_what_ifs(spec, counts, where: str) -> None:
    check_what_ifs(spec.what_if, counts.states, where)
    for n, change in enumerate(spec.what_if):
        source, target = change.transition
        seen = counts.triples[(counts.triples["previous"] == source) & (counts.triples["state"] == target)]
        if seen.empty:
            raise ParamsError(f"journeys.what_if[{n}].transition: no session went from {source!r} to {target!r}; "
                              f"a relative change of a transition never seen changes nothing")


def _transitions_table(observed, P, P_draws, transient, columns) -> pd.DataFrame:
    low, high = _interval(P_draws)
    rows = [{"from": transient[i], "to": columns[j], "count": int(observed[i, j]), "probability": P[i, j],
             "ci_low": low[i, j], "ci_high": high[i, j]}
            for i in range(len(transient)) for j in range(len(columns)) if observed[i, j] > 0]
    return pd.DataFrame(rows, columns=["from", "to", "count", "probability", "ci_low", "ci_high"])


def _by_state(observed, P, P_draws, absent, transient, code) -> tuple[pd.DataFrame, tuple]:
    purchase, start = 0, code[START]
    B, B_draws = chain.absorption_probabilities(P), chain.absorption_probabilities(P_draws)
    t, t_draws = chain.expected_steps(P), chain.expected_steps(P_draws)
    t[start] -= 1  # the virtual start is not a page: from it, the pages of a whole session
    t_draws[:, start] -= 1
    buy, buy_draws = B[:, purchase], np.where(absent, np.nan, B_draws[:, :, purchase])
    t_draws = np.where(absent, np.nan, t_draws)
    visits = observed.sum(axis=1)
    exits = observed[:, code[EXIT]]
    frame = pd.DataFrame({"state": transient, "visits": visits, "exits": exits,
                          "exit_share": np.divide(exits, visits, out=np.full(len(visits), np.nan), where=visits > 0)})
    for name, value, value_draws in (("purchase_probability", buy, buy_draws), ("expected_pages", t, t_draws)):
        low, high = _interval(value_draws)
        frame[name], frame[f"{name}_low"], frame[f"{name}_high"] = value, low, high
    if buy[start] > 0:
        effect = chain.removal_effects(P, start, purchase)
        low, high = _interval(chain.removal_effects(P_draws, start, purchase))
    else:
        effect = low = high = np.full(len(transient), np.nan)
    frame["removal_effect"], frame["removal_effect_low"], frame["removal_effect_high"] = effect, low, high
    conv_low, conv_high = _interval(buy_draws[:, start])
    frame.loc[frame["state"] == START, ["removal_effect", "removal_effect_low", "removal_effect_high"]] = np.nan
    return frame, (float(buy[start]), float(conv_low), float(conv_high))


def _passing_matrix(counts: JourneyCounts):
    """Users × (each state's journeys, those of them that bought, purchasing journeys), the states in
    ``counts.states`` order (the rows of the by-state table after the start)."""
    from scipy import sparse

    n_users, keys = _users(counts), [(state,) for state in counts.states]
    purchases = counts.triples[counts.triples["state"] == EVENTS.purchase]
    return sparse.hstack([_user_matrix(counts.visited, keys, ["state"], n_users, "sessions"),
                          _user_matrix(counts.visited, keys, ["state"], n_users, "bought"),
                          _user_matrix(purchases, [(EVENTS.purchase,)], ["state"], n_users)]).tocsr()


def _passing_through(by_state: pd.DataFrame, matrix, draws: np.ndarray) -> pd.DataFrame:
    """Add what the data say without a chain: ``purchases_through`` (the share of purchasing journeys that
    visited the state) and ``visitors_bought`` (the share of journeys visiting it that bought), with intervals;
    ``matrix`` is :func:`_passing_matrix`'s, ``draws`` its bootstrap totals."""
    k = len(by_state) - 1
    totals = np.asarray(matrix.sum(axis=0)).ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        figures = {"purchases_through": (totals[k:2 * k] / totals[-1], draws[:, k:2 * k] / draws[:, -1:]),
                   "visitors_bought": (totals[k:2 * k] / totals[:k], draws[:, k:2 * k] / draws[:, :k])}
    frame = by_state.copy()
    for name, (value, value_draws) in figures.items():
        low, high = _interval(value_draws)
        frame[name] = np.r_[np.nan, value]
        frame[f"{name}_low"], frame[f"{name}_high"] = np.r_[np.nan, low], np.r_[np.nan, high]
    return frame


def _what_ifs(spec, P, P_draws, code, order_value) -> pd.DataFrame:
    rows = []
    start = code[START]
    for change in spec.what_if:
        source, target = (code[s] for s in change.transition)
        new, new_draws = (chain.what_if(x, source, target, change.change) for x in (P, P_draws))
        before, after = chain.conversion(P, start, 0), chain.conversion(new, start, 0)
        extra_draws = 1000 * (chain.conversion(new_draws, start, 0) - chain.conversion(P_draws, start, 0))
        low, high = _interval(extra_draws)
        extra = 1000 * (after - before)
        rows.append({"from": change.transition[0], "to": change.transition[1], "change": change.change,
                     "probability": P[source, target], "new_probability": new[source, target],
                     "conversion": float(before), "new_conversion": float(after),
                     "extra_per_1000": float(extra), "extra_per_1000_low": float(low),
                     "extra_per_1000_high": float(high), "extra_value_per_1000": float(extra * order_value),
                     "extra_value_per_1000_low": float(low * order_value),
                     "extra_value_per_1000_high": float(high * order_value)})
    return pd.DataFrame(rows, columns=["from", "to", "change", "probability", "new_probability", "conversion",
                                       "new_conversion", "extra_per_1000", "extra_per_1000_low",
                                       "extra_per_1000_high", "extra_value_per_1000", "extra_value_per_1000_low",
                                       "extra_value_per_1000_high"])


def _history_matrix(counts: JourneyCounts, columns) -> tuple[list[tuple], object]:
    """The (before, previous, next) keys of the states whose next step depends on the previous one (a χ² test at
    1%), and the users × keys matrix of their counts (no columns when no state does)."""
    from scipy import sparse
    from scipy.stats import chi2_contingency

    triples = counts.triples
    pair = triples.dropna(subset=["before"]).groupby(["before", "previous", "state"])["n"].sum()
    table = pair.unstack("state", fill_value=0)
    visits = table.sum(axis=1)
    table = table[visits >= MIN_HISTORY_VISITS]
    keep = []
    for state, block in table.groupby(level="previous"):
        block = block.loc[:, block.sum(axis=0) > 0]
        if len(block) < 2 or block.shape[1] < 2:
            continue
        if chi2_contingency(block.to_numpy()).pvalue < 0.01:
            keep.append(state)
    if not keep:
        return [], sparse.csr_matrix((_users(counts), 0))
    keys = [(b, s, n) for (b, s) in table.index if s in keep for n in columns]
    return keys, _user_matrix(triples.dropna(subset=["before"]), keys, ["before", "previous", "state"], _users(counts))


def _history(counts: JourneyCounts, keys: list[tuple], matrix, draws: np.ndarray) -> pd.DataFrame:
    """Second-order shares of :func:`_history_matrix`'s states, with intervals from ``draws`` (its bootstrap)."""
    if not keys:
        return pd.DataFrame(columns=["previous", "state", "next", "visits", "share", "share_low", "share_high",
                                     "first_order"])
    triples = counts.triples
    totals = np.asarray(matrix.sum(axis=0)).ravel()
    frame = pd.DataFrame(keys, columns=["previous", "state", "next"]).assign(count=totals)
    group = frame.groupby(["previous", "state"])["count"].transform("sum").to_numpy()
    frame["visits"] = group
    frame["share"] = totals / group
    group_draws = pd.DataFrame(draws.T).groupby([frame["previous"], frame["state"]]).transform("sum").to_numpy().T
    with np.errstate(invalid="ignore", divide="ignore"):
        frame["share_low"], frame["share_high"] = _interval(draws / group_draws)
    first = triples.groupby(["previous", "state"])["n"].sum()
    out_of = first.groupby(level="previous").sum()
    frame["first_order"] = [first.get((s, n), 0) / out_of[s] for s, n in zip(frame["state"], frame["next"])]
    frame = frame[frame["count"] > 0].drop(columns="count")
    return frame.sort_values(["state", "previous", "next"], ignore_index=True)
