"""Brute-force ranking metrics: the definitions of ``funnelkit.recommend.metrics`` as plain loops.

Slow on purpose and independent of the package's tricks: relevance is read
from the dense matrix (so duplicate entries are summed and stored zeros are
not relevant, as ``truth[u, i] != 0`` says), every user and every rank is
visited one at a time, and each formula is written as stated in the
package's docstrings, with ``math.log2``.
"""
from __future__ import annotations

import math


def relevant_sets(truth) -> list[set[int]]:
    """For each row of a scipy sparse matrix, the set of columns whose value is not 0."""
    dense = truth.toarray()
    return [{i for i in range(dense.shape[1]) if dense[u, i] != 0} for u in range(dense.shape[0])]


def hits(recommended, truth) -> list[list[bool]]:
    relevant = relevant_sets(truth)
    return [[item != -1 and item in relevant[u] for item in row] for u, row in enumerate(recommended.tolist())]


def user_metrics(row: list[int], relevant: set[int], k: int) -> dict[str, float]:
    """precision, recall, ap, ndcg and hit at k of one user."""
    r = len(relevant)
    rel = [1 if (row[j] != -1 and row[j] in relevant) else 0 for j in range(k)]
    found = 0
    ap = 0.0
    dcg = 0.0
    for j in range(1, k + 1):  # 1-based rank
        if rel[j - 1]:
            found += 1
            ap += found / j  # rel_j * precision@j
            dcg += 1 / math.log2(j + 1)
    idcg = 0.0
    for j in range(1, min(k, r) + 1):
        idcg += 1 / math.log2(j + 1)
    return {
        "precision": found / k,
        "recall": found / r,
        "ap": ap / min(k, r),
        "ndcg": dcg / idcg,
        "hit": 1.0 if found > 0 else 0.0,
    }


def per_user_metrics(recommended, truth, k_values) -> list[dict[str, float]]:
    """One dict per user: ``n_relevant`` and ``metric@k`` for every k."""
    relevant = relevant_sets(truth)
    out = []
    for u, row in enumerate(recommended.tolist()):
        record = {"n_relevant": len(relevant[u])}
        for k in k_values:
            for name, value in user_metrics(row, relevant[u], k).items():
                record[f"{name}@{k}"] = value
        out.append(record)
    return out


def implicit_style(recommended, truth, k) -> dict[str, float]:
    """implicit's ranking_metrics_at_k arithmetic: pooled precision, mean ap, mean ndcg."""
    relevant = relevant_sets(truth)
    found_total = 0
    divisor = 0
    ap_total = 0.0
    ndcg_total = 0.0
    for u, row in enumerate(recommended.tolist()):
        metrics = user_metrics(row, relevant[u], k)
        found_total += sum(1 for item in row[:k] if item != -1 and item in relevant[u])
        divisor += min(k, len(relevant[u]))
        ap_total += metrics["ap"]
        ndcg_total += metrics["ndcg"]
    n = len(relevant)
    return {"precision": found_total / divisor, "map": ap_total / n, "ndcg": ndcg_total / n}


def coverage(recommended, n_items, k) -> float:
    shown = set()
    for row in recommended.tolist():
        for item in row[:k]:
            if item != -1:
                shown.add(item)
    return len(shown) / n_items


def novelty(recommended, item_popularity, k, min_share=1e-6) -> float:
    total = 0.0
    count = 0
    for row in recommended.tolist():
        for item in row[:k]:
            if item != -1:
                total += -math.log2(max(float(item_popularity[item]), min_share))
                count += 1
    return total / count
