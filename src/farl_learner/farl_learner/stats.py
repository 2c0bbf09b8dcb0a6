"""Paired bootstrap confidence intervals: is FARL's difference to Uni-O4 more than seed noise?

Both methods run from the same pretrained checkpoint with the same online
seed (paired runs), so the unit of evidence is the per-seed difference
d_i = FARL_i - UniO4_i. The 95 % interval is the percentile bootstrap of the
mean of d over seeds (resampling seeds with replacement). With 5 seeds the
bootstrap has at most C(9, 5) = 126 distinct resamples: coarse, but it says
honestly when the spread of d covers zero.
"""
from __future__ import annotations

import numpy as np


def paired_bootstrap(farl: list[float], base: list[float], resamples: int = 10_000, seed: int = 0) -> dict:
    """Mean paired difference FARL - base, its 95 % percentile-bootstrap CI, and the same as % of base's mean.

    Needs at least two pairs; with fewer, every field but n is None.

    Pairs are (farl[i], base[i]); lists of unequal length are cut to the shorter.
    The relative change uses each resample's own base mean (None where it is 0).
    """
    n = min(len(farl), len(base))
    if n < 2:  # one pair has no spread to bootstrap: no interval, rather than a point posing as one
        return {"n": n, "mean_diff": None, "ci95": None, "change_pct": None, "change_pct_ci95": None,
                "excludes_zero": None}
    f, b = np.asarray(farl[:n], dtype=float), np.asarray(base[:n], dtype=float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, (resamples, n))
    diffs = (f[idx] - b[idx]).mean(1)
    base_means = b[idx].mean(1)
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(base_means != 0, 100.0 * diffs / base_means, np.nan)
    rel = rel[np.isfinite(rel)]
    mean_b = float(b.mean())
    return {
        "n": n,
        "mean_diff": float((f - b).mean()),
        "ci95": [float(lo), float(hi)],
        "change_pct": 100.0 * float((f - b).mean()) / mean_b if mean_b else None,
        "change_pct_ci95": [float(np.percentile(rel, 2.5)), float(np.percentile(rel, 97.5))] if len(rel) else None,
        "excludes_zero": bool(lo > 0 or hi < 0),
    }


def learning_curve(end_steps: list[int], failed: list[bool], returns: list[float], total_steps: int,
                   points: int = 100, window: int = 50) -> dict:
    """Cumulative failure episodes and the moving-average episode return, on an even grid of online steps."""
    grid = np.linspace(0, total_steps, points + 1)[1:]
    ends = np.asarray(end_steps, dtype=float)
    cum_fail = np.cumsum(np.asarray(failed, dtype=float)) if len(failed) else np.zeros(0)
    rets = np.asarray(returns, dtype=float)
    cumulative, avg = [], []
    for g in grid:
        k = int(np.searchsorted(ends, g, side="right"))  # episodes finished by step g
        cumulative.append(float(cum_fail[k - 1]) if k else 0.0)
        avg.append(float(rets[max(0, k - window):k].mean()) if k else None)
    return {"steps": [int(g) for g in grid], "cumulative_failures": cumulative, "return_moving_avg": avg,
            "window": window}
