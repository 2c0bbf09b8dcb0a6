"""The baselines section of `farl bench failurebench --methods ...`: every method against FARL and the paper.

For each task and method: failure episodes, the failure state-action pairs
(the binary cost the safe-RL methods constrain) and the normalized return
after fine-tuning, each as a mean over seeds with its 95 % bootstrap interval
(resampling seeds), and the paired difference to FARL (same checkpoint, same
seed). Then the paper's two claims beside ours:

- the safe-RL baselines' return is far below FARL's (FARL > 8x theirs);
- both ablations lose on Bounded Soccer: 86.98 (simple critic) and 80.16
  (MPPI) against FARL's 122.98.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .bench import METHODS, _fmt, save_figure

SAFE_RL = ("ppo-lag", "p3o", "cpo")
ABLATIONS = ("farl-qrisk", "farl-mppi")
LABELS = {"uni-o4": "Uni-O4", "farl": "FARL", "ppo-lag": "PPO-Lagrangian", "p3o": "P3O", "cpo": "CPO",
          "farl-qrisk": "FARL, simple critic (Q_risk)", "farl-mppi": "FARL, MPPI recovery"}
#: The paper's numbers for these methods (PAPER.md): normalized return after fine-tuning on Bounded Soccer.
PAPER_BOUNDED_SOCCER = {"farl": 122.98, "farl-qrisk": 86.98, "farl-mppi": 80.16}
PAPER_SAFE_RL_RATIO = 8.0


def has_baselines(results: dict) -> bool:
    return bool(set(results.get("methods", METHODS)) - set(METHODS))


def mean_ci(values: list, resamples: int = 10_000, seed: int = 0) -> tuple[float | None, list[float] | None]:
    """Mean over seeds and its 95 % percentile-bootstrap interval (None with fewer than two seeds)."""
    v = np.asarray([x for x in values if x is not None], dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return None, None
    if len(v) < 2:
        return float(v.mean()), None
    means = v[np.random.default_rng(seed).integers(0, len(v), (resamples, len(v)))].mean(1)
    return float(v.mean()), [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def _cell(values: list, digits: int = 1) -> str:
    mean, ci = mean_ci(values)
    if mean is None:
        return "n/a"
    return f"{mean:.{digits}f}" + (f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]" if ci else "")


def _diff(paired: dict | None) -> str:
    if not paired or paired.get("mean_diff") is None:
        return "n/a"
    lo, hi = paired["ci95"]
    return f"{paired['mean_diff']:+.1f} [{lo:+.1f}, {hi:+.1f}]" + (" *" if paired["excludes_zero"] else "")


def render_baselines(results: dict) -> str:
    methods = results.get("methods", list(METHODS))
    lines = [
        "## Safe-RL baselines and FARL's ablations",
        "",
        "Every method fine-tunes the same pretrained checkpoint per task, with the same seeds and budget. "
        "Mean over seeds [95 % bootstrap interval over seeds]; \"vs FARL\": paired difference method − FARL "
        "(same seed), * where its interval excludes 0. Cost = failure state-action pairs (what the safe-RL "
        "methods constrain, `safe_rl.cost_limit` per episode).",
        "",
        "| task | method | seeds | failure episodes | cost (failure pairs) | normalized return after "
        "| failure episodes vs FARL | return vs FARL |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for task, entries in results["tasks"].items():
        vs = results.get("vs_farl", {}).get(task, {})
        for m in methods:
            e = entries.get(m)
            if e is None:
                continue
            paired = vs.get(m, {})
            lines.append(f"| {task} | {LABELS.get(m, m)} | {len(e['seeds'])} | {_cell(e['failure_episodes'])} | "
                         f"{_cell(e['failure_steps'])} | {_cell(e['normalized_return_after'])} | "
                         f"{'—' if m == 'farl' else _diff(paired.get('failure_episodes'))} | "
                         f"{'—' if m == 'farl' else _diff(paired.get('normalized_return_after'))} |")
    lines += ["", "### The paper's claims beside ours", ""]
    lines += claims(results)
    return "\n".join(lines) + "\n"


def claims(results: dict) -> list[str]:
    """One line per claim: the paper's figure, ours, and whether they agree (or that the data is missing)."""
    out = []
    methods = results.get("methods", [])
    present = [m for m in SAFE_RL if m in methods]
    if present:
        farl = [mean_ci(e["farl"]["normalized_return_after"])[0] for e in results["tasks"].values()]
        for m in present:
            ours = [mean_ci(e[m]["normalized_return_after"])[0] for e in results["tasks"].values()]
            pairs = [(f, o) for f, o in zip(farl, ours) if f is not None and o is not None]
            if not pairs:
                out.append(f"- {LABELS[m]}: no finished runs yet.")
                continue
            f_mean, o_mean = np.mean([p[0] for p in pairs]), np.mean([p[1] for p in pairs])
            ratio = f_mean / o_mean if o_mean > 0 else float("inf")
            verdict = "agrees" if ratio > PAPER_SAFE_RL_RATIO else "does not agree"
            out.append(f"- {LABELS[m]}: paper, FARL's return > {PAPER_SAFE_RL_RATIO:g}x the baseline's; ours, "
                       f"FARL {f_mean:.1f} vs {o_mean:.1f} mean normalized return over {len(pairs)} "
                       f"task{'s' if len(pairs) > 1 else ''} "
                       f"({'inf' if ratio == float('inf') else f'{ratio:.1f}'}x): {verdict}.")
    soccer = results["tasks"].get("bounded_soccer")
    for m in ABLATIONS:
        if m not in methods:
            continue
        if soccer is None:
            out.append(f"- {LABELS[m]}: Bounded Soccer was not run.")
            continue
        ours, farl = (mean_ci(soccer[k]["normalized_return_after"])[0] for k in (m, "farl"))
        paper = PAPER_BOUNDED_SOCCER[m]
        if ours is None or farl is None:
            out.append(f"- {LABELS[m]} on Bounded Soccer: paper {paper} vs FARL {PAPER_BOUNDED_SOCCER['farl']}; "
                       "ours: no finished runs yet.")
            continue
        verdict = "agrees (the ablation is worse)" if ours < farl else "does not agree (the ablation is not worse)"
        out.append(f"- {LABELS[m]} on Bounded Soccer: paper {paper} vs FARL {PAPER_BOUNDED_SOCCER['farl']}; "
                   f"ours {_fmt(ours)} vs FARL {_fmt(farl)}: {verdict}.")
    return out or ["- No baseline or ablation has finished runs yet."]


def render_baselines_plot(results: dict, path: Path) -> None:
    """Failure episodes and normalized return after, per task, one bar per method with its 95 % interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = results.get("methods", list(METHODS))
    tasks = list(results["tasks"])
    fig, axes = plt.subplots(1, 2, figsize=(14, 4.5))
    width = 0.8 / len(methods)
    colors = plt.get_cmap("tab10")
    for k, m in enumerate(methods):
        xs = [i + (k - (len(methods) - 1) / 2) * width for i in range(len(tasks))]
        for ax, field in zip(axes, ("failure_episodes", "normalized_return_after")):
            stats = [mean_ci(results["tasks"][t][m][field]) for t in tasks]
            means = [s[0] or 0.0 for s in stats]
            errors = np.array([[mean - ci[0], ci[1] - mean] if ci else [0.0, 0.0]
                               for mean, (_, ci) in zip(means, stats)]).T
            ax.bar(xs, means, width, yerr=errors, color=colors(k), label=LABELS.get(m, m), capsize=2)
    steps = results["budget"]["online_steps"]
    axes[0].set_title(f"failure episodes in {steps:,} online steps (95 % CI over seeds)")
    axes[1].set_title("normalized return after fine-tuning (95 % CI over seeds)")
    for ax in axes:
        ax.set_xticks(range(len(tasks)))
        ax.set_xticklabels([t.replace("_", "\n") for t in tasks])
    axes[1].legend(fontsize=7)
    save_figure(fig, results, path)
