"""The stack's online learning loop in the training twin: FARL vs shield off, many seeds, in minutes.

The stack benchmark (`stack.py fragile_push_wall`) takes about 20 minutes per
50 + 50 episodes and gives one seed. Whether online learning helps or hurts
success is a question about the learner's settings, and it needs more seeds
than that. This script runs the same learner (`LearnerCore`: the PPO update,
the per-step weights, the model-folder export the stack's learner node does)
on episodes from the training twin, with the exploring actor the shield node
runs (AR(1)-correlated sampling of pi_task) and, in the FARL arm, the same
shield (C_H > eps_safe -> pi_rec). One learner per arm and seed, updates every
`episodes_per_update` episodes, as in `config/stacks/<task>.yaml`.

What it does not model: the served stack's latency beyond the twin's command
delay (`twin.command_delay_s`), and the learner's asynchrony (the stack keeps
acting with the old policy for the ~1 s an update and its hot-swap take).

    python benchmarks/twin_online.py [--episodes 50] [--seeds 0 1 2 3 4 5 6 7] [--set ppo.learning_rate=1e-5 ...]
                                     [--name twin_online]

Writes benchmarks/results/<name>.json and .md: per arm, successes, failure
episodes/pairs and mean return over all seeds with 95 % bootstrap intervals,
and success/failure rates per block of 10 episodes (does learning help or hurt
over the run?).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from common import RESULTS, command_line, machine  # first: one thread, private ROS domain

import numpy as np  # noqa: E402
import torch  # noqa: E402

from farl_common.config import parse_overrides  # noqa: E402
from farl_common.paths import config_dir  # noqa: E402
from farl_learner.config import load_farl_config  # noqa: E402
from farl_learner.learner_core import LearnerCore  # noqa: E402
from farl_learner.shield import RECOVERY, Shield  # noqa: E402
from farl_learner.stats import paired_bootstrap  # noqa: E402
from farl_learner.training.io import CALIBRATION, read_json  # noqa: E402
from farl_learner.twin.actors import PolicyActor, ShieldedActor  # noqa: E402
from farl_learner.twin.config import load_twin_config, make_twin_env  # noqa: E402

ARMS = ("shield_off", "farl")
BLOCK = 10


def run_arm(task: str, models: Path, cfg, arm: str, seed: int, episodes: int, per_update: int, min_steps: int,
            work: Path, max_steps: int | None = None, epsilon_safe: float | None = None) -> list[dict]:
    """One learner and one exploring actor over `episodes` twin episodes; the per-episode outcomes."""
    env = make_twin_env(task, load_twin_config(task), max_steps=max_steps)
    torch.manual_seed(seed)  # the learner's minibatch order: the same in both arms, and from run to run
    core = LearnerCore(task, models, work / f"{arm}-seed{seed}", cfg, episodes_per_update=per_update,
                       min_steps_per_update=min_steps)
    correlation = env.spec_.exploration_correlation
    shield = None
    if arm == "farl":
        shield = Shield(core.policy, core.recovery, core.world_model, cfg.risk.horizon, cfg.risk.gamma_risk,
                        core.epsilon_safe if epsilon_safe is None else epsilon_safe)
    outcomes = []
    for i in range(episodes):
        episode_seed = 1_000 * seed + i  # the same starts in both arms
        actor = PolicyActor(core.policy, True, correlation, seed=episode_seed)  # the current policy and its std
        if shield is not None:
            # The config's hold (Bounded Soccer: 3, as its shipped manifest), not the folder's manifest; try
            # others with --set risk.recovery_hold_ticks=N.
            actor = ShieldedActor(actor, shield, hold=cfg.risk.recovery_hold_ticks)
        obs, _ = env.reset(seed=episode_seed)
        actor.reset()
        columns = {k: [] for k in ("obs", "action", "action_task", "reward", "next_obs", "done", "source",
                                   "intervention")}
        failed = succeeded = False
        triggers = 0
        while True:
            step = actor.step(obs)
            action, source, proposed = step.action, step.source, step.proposal
            next_obs, reward, terminated, truncated, info = env.step(action)
            for key, value in (("obs", obs), ("action", action), ("action_task", proposed), ("reward", float(reward)),
                               ("next_obs", next_obs), ("done", bool(terminated)), ("source", source),
                               ("intervention", False)):
                columns[key].append(value.tolist() if isinstance(value, np.ndarray) else value)
            triggers += source == RECOVERY
            failed |= bool(info["failure"])
            succeeded |= bool(info["success"])
            obs = next_obs
            if terminated or truncated:
                break
        core.add_episode({"task": task, **columns})
        update = None
        if core.ready():
            core.update()
            update = {k: round(float(v), 4) for k, v in core.last_stats.items()}
        # As the stack benchmark splits them: a failure with pi_task acting in the last H + 1 ticks is a
        # miss of the shield, one with pi_rec alone in control there is a recovery that did not save it.
        recovery_failure = failed and shield is not None and all(
            s == RECOVERY for s in columns["source"][-(cfg.risk.horizon + 1):])
        outcomes.append({"success": succeeded, "failure": failed, "recovery_failure": recovery_failure,
                         "return": float(sum(columns["reward"])),
                         "steps": len(columns["reward"]), "triggers": triggers, "policy_version": core.version,
                         "update": update})
    return outcomes


def summarize(outcomes: list[list[dict]]) -> dict:
    flat = [o for run in outcomes for o in run]
    n_blocks = len(outcomes[0]) // BLOCK

    def rate(key: str, block: int) -> float:
        values = [o[key] for run in outcomes for o in run[block * BLOCK:(block + 1) * BLOCK]]
        return float(np.mean(values))

    per_seed_success = [float(np.mean([o["success"] for o in run])) for run in outcomes]
    return {
        "episodes": len(flat),
        "success_rate": float(np.mean([o["success"] for o in flat])),
        "failure_episodes": int(sum(o["failure"] for o in flat)),
        "failure_rate": float(np.mean([o["failure"] for o in flat])),
        "mean_return": float(np.mean([o["return"] for o in flat])),
        "shield_triggers": int(sum(o["triggers"] for o in flat)),
        "recovery_failures": int(sum(o.get("recovery_failure", False) for o in flat)),
        "per_seed_success_rate": per_seed_success,
        "per_seed_failures": [int(sum(o["failure"] for o in run)) for run in outcomes],
        # The learner's own view of each update, averaged over seeds: is the critic fit for the advantages
        # (explained variance), how far each update moves the policy (approx KL), how often the clip binds.
        "updates": _update_means(outcomes),
        "blocks": [{"episodes": f"{b * BLOCK + 1}-{(b + 1) * BLOCK}", "success_rate": rate("success", b),
                    "failure_rate": rate("failure", b)} for b in range(n_blocks)],
    }


def _update_means(outcomes: list[list[dict]]) -> list[dict]:
    per_index: dict[int, list[dict]] = {}
    for run in outcomes:
        for i, stats in enumerate(o["update"] for o in run if o["update"] is not None):
            per_index.setdefault(i, []).append(stats)
    keys = ("explained_variance", "approx_kl", "clipfrac", "value_loss", "entropy")
    return [{"update": i + 1, **{k: float(np.mean([s[k] for s in group])) for k in keys}}
            for i, group in sorted(per_index.items())]


def render(results: dict) -> str:
    off, on = results["arms"]["shield_off"], results["arms"]["farl"]
    lines = [f"# The stack's online learner in the training twin: FARL vs shield off ({results['task']})", "",
             f"Command: `{results['command']}`", "",
             f"{results['episodes']} episodes per seed, seeds {results['seeds']}, an update every "
             f"{results['episodes_per_update']} episodes; config overrides: {results['overrides'] or 'none'}; "
             f"models `{results['models']}`. Machine: {results['machine']}; {results['seconds']:.0f} s.", "",
             "| | shield off | FARL |", "|---|---|---|"]
    for label, key, fmt in (("success rate", "success_rate", "{:.0%}"), ("failure episodes", "failure_episodes", "{}"),
                            ("failure rate", "failure_rate", "{:.1%}"), ("mean return", "mean_return", "{:.1f}"),
                            ("shield triggers", "shield_triggers", "{}"),
                            ("failures with pi_rec alone in the last H + 1 ticks", "recovery_failures", "{}")):
        lines.append(f"| {label} | {fmt.format(off[key])} | {fmt.format(on[key])} |")
    for label, key in (("success rate", "success"), ("failures per seed", "failures")):
        d = results["paired"][key]
        if d["ci95"] is not None:
            lines.append(f"| FARL - shield off, {label}: mean paired difference over seeds [95 % CI] | | "
                         f"{d['mean_diff']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}] |")
    lines += ["", "Per block of 10 episodes (all seeds): success / failure rate", "",
              "| episodes | shield off | FARL |", "|---|---|---|"]
    for b_off, b_on in zip(off["blocks"], on["blocks"]):
        lines.append(f"| {b_off['episodes']} | {b_off['success_rate']:.0%} / {b_off['failure_rate']:.0%} | "
                     f"{b_on['success_rate']:.0%} / {b_on['failure_rate']:.0%} |")
    lines += ["", "The learner per update (mean over seeds): critic's explained variance / approx KL / clip fraction", "",
              "| update | shield off | FARL |", "|---|---|---|"]
    for u_off, u_on in zip(off["updates"], on["updates"]):
        lines.append(f"| {u_off['update']} | " + " | ".join(
            f"{u['explained_variance']:+.2f} / {u['approx_kl']:.4f} / {u['clipfrac']:.2f}" for u in (u_off, u_on)) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="fragile_push_wall")
    parser.add_argument("--models", default=None, help="model folder (default: config/models/<task>)")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5, 6, 7])
    parser.add_argument("--episodes-per-update", type=int, default=4)
    parser.add_argument("--min-steps-per-update", type=int, default=64)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key of config/farl/franka/<task>.yaml (repeatable)")
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS),
                        help="arms to run (a comparison needs both; one arm is for quick checks of a setting)")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="episode time limit in ticks (default: the task config's episode.max_steps)")
    parser.add_argument("--epsilon-safe", type=float, default=None,
                        help="the shield's threshold (default: the model folder's calibrated eps_safe)")
    parser.add_argument("--name", default="twin_online")
    args = parser.parse_args()
    torch.set_num_threads(1)
    models = Path(args.models) if args.models else config_dir() / "models" / args.task
    overrides = parse_overrides(args.overrides)
    cfg = load_farl_config(str(config_dir() / "farl" / "franka" / f"{args.task}.yaml"), overrides)
    read_json(models / CALIBRATION)  # one clear line if the folder is not a model folder
    started = time.perf_counter()
    arms = {}
    with tempfile.TemporaryDirectory(prefix="farl-twin-online-") as tmp:
        for arm in args.arms:
            runs = []
            for seed in args.seeds:
                runs.append(run_arm(args.task, models, cfg, arm, seed, args.episodes, args.episodes_per_update,
                                    args.min_steps_per_update, Path(tmp), args.max_steps, args.epsilon_safe))
                done = runs[-1]
                print(f"[twin-online] {arm} seed {seed}: {sum(o['success'] for o in done)} successes, "
                      f"{sum(o['failure'] for o in done)} failures of {len(done)}", flush=True)
            arms[arm] = summarize(runs)
    repo = config_dir().parent
    shown = str(models.resolve().relative_to(repo)) if models.resolve().is_relative_to(repo) else models.name
    results = {"task": args.task, "command": command_line(), "models": shown,
               "episodes": args.episodes, "seeds": args.seeds, "max_steps": args.max_steps, "epsilon_safe": args.epsilon_safe, "episodes_per_update": args.episodes_per_update,
               "overrides": overrides, "machine": machine(), "seconds": time.perf_counter() - started, "arms": arms}
    if len(arms) == len(ARMS):
        results["paired"] = {"success": paired_bootstrap(arms["farl"]["per_seed_success_rate"],
                                                      arms["shield_off"]["per_seed_success_rate"]),
                          "failures": paired_bootstrap(arms["farl"]["per_seed_failures"],
                                                       arms["shield_off"]["per_seed_failures"])}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(results, indent=2) + "\n")
    if len(arms) == len(ARMS):
        (RESULTS / f"{args.name}.md").write_text(render(results))
    print(render(results) if len(arms) == len(ARMS) else json.dumps(arms, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
