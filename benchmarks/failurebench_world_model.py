"""Does the world model see failures coming? Recall vs needless triggers on held-out data, per task.

For each pretrained model folder (`farl pretrain` / `farl bench failurebench`
output: world_model.pt, task_policy.pt, failure_data.npz, calibration.json):

- re-splits the failure data exactly as pretraining did (split_episodes with
  risk.holdout_fraction and the pretraining seed): the held-out episodes were
  never seen by the world model;
- C_H of every held-out state with the dataset's own first action (as the
  shield judges the action it is about to execute) and pi_task's mean after;
- the trade-off over eps_safe: recall of failure-preceding states (a failure
  within H steps) against the needless-trigger rate on safe states, one PNG per
  task with the calibrated eps_safe marked; recall at <= --needless-cap
  (target: >= 0.90 at <= 15 %);
- diagnostics of what limits recall: the same curve on the training episodes
  (memorised but not generalised = data; low on both = capacity/budget), recall
  per steps-to-failure k = 0..H at that operating point (only the near steps =
  horizon / compounding model error), the one-step constraint head's recall on
  encoded states, and the class balance (failure-preceding share, failure episodes).

Writes benchmarks/results/failurebench_world_model.{json,md} and
failurebench_wm_tradeoff_<task>.png.

    python benchmarks/failurebench_world_model.py --models runs/bench/protocol [--tasks ...]
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from common import RESULTS, command_line, machine, relative  # first: private ROS domain, loopback only

import numpy as np  # noqa: E402
import torch  # noqa: E402


def recall_at_cap(curve: dict, cap: float) -> tuple[float, float | None]:
    """The best recall whose needless-trigger rate is <= cap, and the eps that gives it."""
    best, eps = 0.0, None
    for e, r, n in zip(curve["epsilon"], curve["recall"], curve["needless_trigger_rate"]):
        if n <= cap and r > best:
            best, eps = r, e
    return best, eps


def analyse(task: str, model_dir: Path, cap: float) -> dict:
    from farl_learner.agents.transitions import Transitions, steps_to_failure
    from farl_learner.agents.world_model_agent import constraint_recall
    from farl_learner.config import FarlConfig, apply_overrides  # noqa: F401
    from farl_learner.data import load_dataset
    from farl_learner.risk import evaluate_epsilon, risk_of_states, tradeoff_curve
    from farl_learner.training.finetune import load_pretrained

    pre = json.loads((model_dir / "pretrain.json").read_text())
    cfg_d = pre["config"]
    horizon, gamma = cfg_d["risk"]["horizon"], cfg_d["risk"]["gamma_risk"]
    models = load_pretrained(model_dir, task)
    wm, policy = models["world_model"], models["policy"]
    eps_cal = float(models["calibration"]["epsilon_safe"])
    failure = Transitions.from_arrays(load_dataset(model_dir / "failure_data.npz", expect_task=task))
    train, hold = failure.split_episodes(cfg_d["risk"]["holdout_fraction"], cfg_d["seed"])
    out: dict = {"task": task, "model_dir": relative(str(model_dir)), "horizon": horizon, "gamma_risk": gamma,
                 "world_model_steps": cfg_d["world_model"]["steps"], "world_model_hidden": cfg_d["world_model"]["hidden"],
                 "failure_transitions": len(failure), "epsilon_safe_calibrated": eps_cal,
                 "calibration": {k: models["calibration"].get(k) for k in ("miss_rate", "needless_trigger_rate",
                                                                           "limited_by")}}
    for name, data in (("holdout", hold), ("train", train)):
        with torch.no_grad():
            risk = risk_of_states(wm, policy, data.obs, horizon, gamma, first_actions=np.clip(data.action, -1, 1))
        to_fail = steps_to_failure(data)
        curve = tradeoff_curve(risk, to_fail, horizon, points=400)
        best, eps = recall_at_cap(curve, cap)
        at_cal = evaluate_epsilon(risk, to_fail, horizon, eps_cal)
        positive = to_fail <= horizon
        entry = {"transitions": len(data), "failure_episodes": int((data.cost > 0).sum()),
                 "failure_preceding": int(positive.sum()), "failure_preceding_share": float(positive.mean()),
                 "recall_at_cap": best, "epsilon_at_cap": eps,
                 "recall_at_calibrated": 1.0 - at_cal.miss_rate,
                 "needless_at_calibrated": at_cal.needless_trigger_rate, "curve": curve,
                 "one_step_head": constraint_recall(wm, data)}
        if eps is not None:  # recall by distance to the failure at the capped operating point
            entry["recall_by_steps_to_failure"] = {
                int(k): float(np.mean(risk[to_fail == k] > eps)) if np.any(to_fail == k) else None
                for k in range(horizon + 1)}
        out[name] = entry
    return out


def plot(result: dict, cap: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.6))
    for name, style in (("holdout", "-"), ("train", ":")):
        c = result[name]["curve"]
        ax.plot(c["needless_trigger_rate"], c["recall"], style, label=f"{name} episodes")
    h = result["holdout"]
    ax.scatter([h["needless_at_calibrated"]], [h["recall_at_calibrated"]], color="red", zorder=3,
               label=f"calibrated eps_safe = {result['epsilon_safe_calibrated']:.3g}")
    ax.axvline(cap, color="gray", lw=0.8, ls="--")
    ax.axhline(0.9, color="gray", lw=0.8, ls="--")
    ax.set_xlabel("needless-trigger rate (safe states with C_H > eps)")
    ax.set_ylabel(f"recall (failure within H = {result['horizon']} steps)")
    ax.set_title(f"{result['task']}: world-model shield trade-off\nrecall {h['recall_at_cap']:.2f} at "
                 f"<= {100 * cap:.0f} % needless (target 0.90)", fontsize=10)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", required=True, help="folder with <task>/pretrained/ model folders")
    parser.add_argument("--tasks", nargs="+", default=None)
    parser.add_argument("--needless-cap", type=float, default=0.15)
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--name", default="failurebench_world_model",
                        help="base name of the result files (a second run beside the committed one)")
    parser.add_argument("--plot-suffix", default="", help="appended to the trade-off PNGs' names, e.g. _50k")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from farl_learner.commands.common import task_names

    out = Path(os.path.abspath(args.out))
    out.mkdir(parents=True, exist_ok=True)
    tasks = args.tasks or [t for t in task_names() if (Path(args.models) / t / "pretrained" / "pretrain.json").is_file()]
    report = {"benchmark": "failurebench_world_model", "command": command_line(), "machine": machine(),
              "needless_cap": args.needless_cap, "target_recall": 0.9, "tasks": {}}
    for task in tasks:
        r = analyse(task, Path(args.models) / task / "pretrained", args.needless_cap)
        plot(r, args.needless_cap, out / f"failurebench_wm_tradeoff_{task}{args.plot_suffix}.png")
        report["tasks"][task] = r
        h = r["holdout"]
        print(f"{task}: held-out recall {h['recall_at_cap']:.2f} at <= {100 * args.needless_cap:.0f} % needless; "
              f"train {r['train']['recall_at_cap']:.2f}; calibrated eps {r['epsilon_safe_calibrated']:.3g}: recall "
              f"{h['recall_at_calibrated']:.2f}, needless {h['needless_at_calibrated']:.2f}", flush=True)
    (out / f"{args.name}.json").write_text(json.dumps(report, indent=2))
    (out / f"{args.name}.md").write_text(render(report, args.plot_suffix))
    print(render(report, args.plot_suffix))


def render(r: dict, plot_suffix: str = "") -> str:
    cap = r["needless_cap"]
    lines = ["# FailureBench world model: recall of failure-preceding states vs needless triggers", "",
             f"Command: `{r['command']}`", "",
             f"Held-out failure episodes (never trained on). Recall: failure-preceding states (failure within H "
             f"steps) with C_H > eps; needless: safe states with C_H > eps. Target: recall >= 0.90 at <= "
             f"{100 * cap:.0f} % needless. {r['machine']['date_utc']} UTC.", "",
             f"| task | WM steps | failure data (episodes w/ failure, held-out) | failure-preceding share (held-out) "
             f"| recall @ <= {100 * cap:.0f} % needless: held-out / train | calibrated eps_safe: recall / needless "
             f"| one-step head recall@0.5 held-out / train | recall by steps to failure k = 0..H (held-out, at the cap) |",
             "|---|---|---|---|---|---|---|---|"]
    for task, t in r["tasks"].items():
        h, tr = t["holdout"], t["train"]
        by_k = h.get("recall_by_steps_to_failure") or {}
        ks = " ".join("-" if v is None else f"{v:.2f}" for v in by_k.values())
        lines.append(
            f"| {task} | {t['world_model_steps']} | {t['failure_transitions']} transitions, "
            f"{h['failure_episodes'] + tr['failure_episodes']} failures ({h['failure_episodes']} held out) | "
            f"{h['failure_preceding_share']:.3f} | {h['recall_at_cap']:.2f} / {tr['recall_at_cap']:.2f} | "
            f"{h['recall_at_calibrated']:.2f} / {h['needless_at_calibrated']:.2f} | "
            f"{h['one_step_head']['recall@0.5']:.2f} / {tr['one_step_head']['recall@0.5']:.2f} | {ks} |")
    lines += ["", f"Trade-off curves: `failurebench_wm_tradeoff_<task>{plot_suffix}.png` (held-out solid, training dotted, "
                  "calibrated eps_safe in red).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
