"""Was a recovery failure recoverable, and from when? Replays in the training twin.

A *recovery failure* (twin_shield_diagnosis.py) is a failure with only recovery
actions in its last H + 1 ticks: the shield warned, and the recovery did not
save it. That can mean two different things, with different fixes:

- the recovery is weak (a better pi_rec, more recovery demos), or
- the state was already lost when the shield handed over (the warning has to
  come earlier: a longer horizon, a lower eps_safe).

This runs the shipped loop (pi_task with the stack's exploration noise, the
shield with the config's recovery hold) over seeded episodes, and for every
recovery failure restores the twin's state at the tick the last recovery
stretch began, and `k` ticks before it, and lets one controller keep control
until the episode ends: pi_rec, the scripted recovery teacher of its demos,
or a zero action (nobody pushes). A state a controller saves from was
recoverable by it.

    python benchmarks/twin_recovery_replay.py bounded_soccer [--models config/models/bounded_soccer]
        [--episodes 200] [--earlier 2 4 6 8 12] [--name NAME]

Writes benchmarks/results/<name>.{json,md} (default twin_recovery_replay_<task>).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from common import REPO, RESULTS, command_line, machine  # first: one thread, private ROS domain

import numpy as np  # noqa: E402
import torch  # noqa: E402

from farl_common.paths import config_dir  # noqa: E402
from farl_learner.twin.actors import PolicyActor, ShieldedActor  # noqa: E402
from farl_learner.twin.config import load_twin_config, make_twin_env  # noqa: E402
from farl_learner.twin.experts import RecoveryController  # noqa: E402
from farl_learner.shield import RECOVERY  # noqa: E402
from twin_shield_diagnosis import load_folder_shield  # noqa: E402
from farl_learner.config import load_farl_config  # noqa: E402

SEED = 30_000  # episode seeds: those of twin_shield_diagnosis.py, apart from the pretraining's


def saves(env, state, obs: np.ndarray, controller) -> bool:
    """Whether `controller`, in control from `state` to the end of the episode, avoids the failure."""
    env.set_state(state)
    if hasattr(controller, "reset"):
        controller.reset()
    while True:
        obs, _, terminated, truncated, info = env.step(controller(obs))
        if info["failure"]:
            return False
        if terminated or truncated:
            return True


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=("bounded_soccer", "disturbed_push", "fragile_push_wall"))
    parser.add_argument("--models", type=Path, default=None, help="model folder [default: config/models/<task>]")
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--earlier", type=int, nargs="*", default=[2, 4, 6, 8, 12],
                        help="also replay from this many ticks before the hand-over")
    parser.add_argument("--name", default=None)
    args = parser.parse_args()
    models = args.models or config_dir() / "models" / args.task
    policy, _, _, calibration, shield = load_folder_shield(models)
    horizon, eps = int(calibration["horizon"]), float(calibration["epsilon_safe"])
    hold = load_farl_config(str(config_dir() / "farl" / "franka" / f"{args.task}.yaml")).risk.recovery_hold_ticks
    twin = load_twin_config(args.task)
    env = make_twin_env(args.task, twin)
    controllers = {
        "pi_rec": lambda o: shield.recovery_batch(torch.as_tensor(o, dtype=torch.float32)[None])[0]
        .clamp(-1, 1).numpy(),
        "scripted": RecoveryController(env.config, env.spec_, twin.expert, twin.recovery),
        "zero": lambda o: np.zeros(env.action_space.shape, dtype=np.float32),
    }
    started = time.monotonic()
    cases, failures = [], 0
    for i in range(args.episodes):
        actor = ShieldedActor(PolicyActor(policy, True, env.spec_.exploration_correlation, seed=SEED + i), shield,
                              hold=hold)
        obs, _ = env.reset(seed=SEED + i)
        actor.reset()
        history = []
        while True:
            state = env.get_state()
            step = actor.step(obs)
            history.append((state, obs, step.source))
            obs, _, terminated, truncated, info = env.step(step.action)
            if terminated or truncated:
                break
        if not info["failure"]:
            continue
        failures += 1
        sources = [source for _, _, source in history]
        if not all(s == RECOVERY for s in sources[-(horizon + 1):]):
            continue  # a miss: pi_task acted in the last H + 1 ticks
        start = len(sources) - 1
        while start > 0 and sources[start - 1] == RECOVERY:
            start -= 1
        case = {"episode": i, "stretch_ticks": len(sources) - start, "saved_by": {}}
        for earlier in [0, *args.earlier]:
            if start - earlier < 0:
                continue
            state, at, _ = history[start - earlier]
            case["saved_by"][str(earlier)] = {name: saves(env, state, at, c) for name, c in controllers.items()}
        cases.append(case)
        print(f"[replay] episode {i}: recovery failure after {case['stretch_ticks']} recovery ticks; saved from "
              + ", ".join(f"-{k}: " + "/".join(n for n, ok in v.items() if ok) for k, v in case["saved_by"].items()),
              flush=True)
    table = {}
    for earlier in [0, *args.earlier]:
        rows = [c["saved_by"][str(earlier)] for c in cases if str(earlier) in c["saved_by"]]
        table[str(earlier)] = {"replayed": len(rows), **{n: sum(r[n] for r in rows) for n in controllers}}
    shown = models.resolve().relative_to(REPO) if models.resolve().is_relative_to(REPO) else models
    results = {"task": args.task, "models": str(shown), "horizon": horizon, "epsilon_safe": eps, "hold": hold,
               "episodes": args.episodes, "failure_episodes": failures, "recovery_failures": len(cases),
               "saved_from": table, "cases": cases, "command": command_line(), "machine": machine(),
               "seconds": time.monotonic() - started}
    name = args.name or f"twin_recovery_replay_{args.task}"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(render(results))
    print(render(results))


def render(results: dict) -> str:
    m = results["machine"]
    lines = [f"# Recovery failures replayed in the training twin: {results['task']}", "",
             f"Command: `{results['command']}`", "",
             f"Model folder `{results['models']}` (H = {results['horizon']}, eps_safe {results['epsilon_safe']:.4g}, "
             f"recovery hold {results['hold']}); {results['episodes']} seeded episodes, {results['failure_episodes']} "
             f"failures, {results['recovery_failures']} of them recovery failures. Machine: {m['cpus']} CPUs, "
             f"load average {m['load_avg_1min']} at the start, {m['date_utc']} UTC; {results['seconds']:.0f} s.", "",
             "Each recovery failure replayed from the twin's state at the hand-over (the first tick of the last "
             "recovery stretch) and k ticks before it, with one controller in control to the end of the episode:", "",
             "| replayed from | recovery failures replayed | saved by pi_rec | by the scripted teacher | "
             "by a zero action |", "|---|---|---|---|---|"]
    for earlier, row in results["saved_from"].items():
        label = "the hand-over" if earlier == "0" else f"{earlier} ticks before it"
        lines.append(f"| {label} | {row['replayed']} | {row['pi_rec']} | {row['scripted']} | {row['zero']} |")
    return "\n".join(lines + [""])


def main() -> None:
    from farl_common.errors import exit_on_input_error

    with exit_on_input_error("twin_recovery_replay"):  # a missing model folder is one line, not a traceback
        run()


if __name__ == "__main__":
    main()
