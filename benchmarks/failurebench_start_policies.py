"""Starting policies like the paper's: the pretrained Uni-O4 policy's normalized return per task and budget.

The paper's pretrained policies start at normalized return -16..26 (PAPER.md),
a regime where exploration fails often - what FARL is for. Ours started at
48-79 with the `quick` profile (1,000 BC steps per member on 20 medium-expert
demos). This script pretrains the task policy (Uni-O4 stages 1-2:
BC ensemble, expectile critic, clipped offline improvement, member chosen by
critic value - exactly what `farl pretrain` runs) on the same 20 demos for
several BC budgets (--bc-steps; the offline stage follows the profile), and
evaluates each with --episodes deterministic episodes (normalized: 0 = uniform
random, 100 = scripted expert). Per task it picks the budget whose mean lands
in the band (--band, default -20..30) closest to --aim, and prints the
per-task `--task-set` arguments the protocol runner takes. The aim is the
paper's own start on that task (mean of its Uni-O4 and FARL "before" values),
unless --aim is given.

Writes benchmarks/results/failurebench_start.{json,md} with the command.

    python benchmarks/failurebench_start_policies.py [--tasks ...] [--bc-steps 50 100 200 400 1000]
"""
from __future__ import annotations

import argparse
import json
import os
import time

from common import RESULTS, command_line, machine  # first: private ROS domain, loopback only

import numpy as np  # noqa: E402
import torch  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=None)
    parser.add_argument("--bc-steps", nargs="+", type=int, default=[50, 100, 200, 400, 1000])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--seed", type=int, default=0, help="pretraining seed (the protocol's --pretrain-seed)")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--band", nargs=2, type=float, default=[-20.0, 30.0])
    parser.add_argument("--aim", type=float, default=None,
                        help="preferred normalized return inside the band (default: the paper's start on the task)")
    parser.add_argument("--data", default="data/failurebench")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    torch.set_num_threads(1)

    from farl_learner.agents.transitions import Transitions
    from farl_learner.agents.uni_o4 import pretrain_task_policy
    from farl_learner.commands.common import load_config, task_names
    from farl_learner.data import build_offline_datasets
    from farl_learner.envs import make_env, normalized_return
    from farl_learner.training.online import evaluate

    tasks = args.tasks or list(task_names())
    out_path = os.path.join(os.path.abspath(args.out), "failurebench_start.json")
    result = {"benchmark": "failurebench_start", "command": command_line(), "machine": machine(),
              "profile": args.profile, "seed": args.seed, "episodes": args.episodes, "band": args.band,
              "aim": args.aim, "tasks": {}}
    for task in tasks:
        demos = build_offline_datasets(task, args.data, seed=args.seed, progress=False)
        data = Transitions.from_arrays(demos.task)
        env = make_env(task, seed=10_000)
        rows = []
        for steps in args.bc_steps:
            cfg, _ = load_config(task, args.profile, {"seed": args.seed, "bc.steps": steps})
            start = time.perf_counter()
            agent = pretrain_task_policy(data, cfg, progress=False)
            seconds = time.perf_counter() - start
            episodes = [evaluate(env, agent.policy, 1, seed=10_000 + k) for k in range(args.episodes)]
            raw = float(np.mean([e["mean_return"] for e in episodes]))  # = evaluate(env, policy, episodes, 10_000)
            row = {"bc_steps": steps, "normalized_return": normalized_return(task, raw),
                   "normalized_per_episode": [normalized_return(task, e["mean_return"]) for e in episodes],
                   "failure_rate": float(np.mean([e["failure_rate"] for e in episodes])),
                   "success_rate": float(np.mean([e["success_rate"] for e in episodes])), "pretrain_seconds": seconds}
            rows.append(row)
            print(f"{task} bc.steps={steps}: normalized {row['normalized_return']:.1f} "
                  f"(failures {row['failure_rate']:.1f}, successes {row['success_rate']:.1f}) in {seconds:.0f} s",
                  flush=True)
        inside = [r for r in rows if args.band[0] <= r["normalized_return"] <= args.band[1]]
        aim = args.aim if args.aim is not None else paper_start(task)
        chosen = min(inside, key=lambda r: abs(r["normalized_return"] - aim)) if inside else None
        result["tasks"][task] = {"rows": rows, "aim": aim, "chosen_bc_steps": chosen["bc_steps"] if chosen else None,
                                 "chosen_normalized_return": chosen["normalized_return"] if chosen else None}
        os.makedirs(os.path.dirname(out_path), exist_ok=True)
        with open(out_path, "w") as f:
            json.dump(result, f, indent=2)
        with open(out_path.replace(".json", ".md"), "w") as f:
            f.write(render(result))
    print(render(result))


def paper_start(task: str) -> float:
    """The paper's normalized return before fine-tuning on `task`, mean of Uni-O4's and FARL's."""
    from farl_learner.commands.bench import PAPER

    return 0.5 * (PAPER[task]["uni-o4"][1] + PAPER[task]["farl"][1])


def render(r: dict) -> str:
    lines = ["# FailureBench starting policies (pretrained Uni-O4 task policy)", "",
             f"Command: `{r['command']}`", "",
             f"Profile `{r['profile']}` with `bc.steps` varied (BC on the 20 medium-expert task demos; offline "
             f"critic and improvement as in the profile), pretraining seed {r['seed']}; normalized return of "
             f"{r['episodes']} deterministic episodes (0 = uniform random, 100 = scripted expert). Band "
             f"{r['band'][0]:g}..{r['band'][1]:g} (the paper's starts: -15.85..26.01); aim per task below "
             "(default: the paper's start on the task). "
             f"{r['machine']['date_utc']} UTC.", "",
             "| task | BC steps | normalized return | per-episode min..max | failure rate | success rate |",
             "|---|---|---|---|---|---|"]
    for task, t in r["tasks"].items():
        for row in t["rows"]:
            mark = " **(chosen)**" if row["bc_steps"] == t["chosen_bc_steps"] else ""
            pe = row["normalized_per_episode"]
            spread = f"{min(pe):.1f}..{max(pe):.1f}" if pe else "n/a"
            lines.append(f"| {task} | {row['bc_steps']}{mark} | {row['normalized_return']:.1f} | "
                         f"{spread} | {row['failure_rate']:.1f} | {row['success_rate']:.1f} |")
    lines += ["", "Aims: " + ", ".join(f"{task} {t['aim']:.1f}" for task, t in r["tasks"].items()), ""]
    lines += ["", "Chosen (protocol runner arguments): " + " ".join(
        f"--task-set {task}:bc.steps={t['chosen_bc_steps']}" for task, t in r["tasks"].items()
        if t["chosen_bc_steps"] is not None), ""]
    missing = [task for task, t in r["tasks"].items() if t["chosen_bc_steps"] is None]
    if missing:
        lines.append(f"No budget in the band for: {', '.join(missing)}.")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
