"""Why does the shield not cut failures? Detection vs recovery, in the training twin.

The stack benchmark says *whether* FARL cuts failures; when it does not, this
says *where* it breaks. The same exploring task policy (pi_task sampled with the
stack's AR(1) exploration noise) runs the same seeded episodes under several
arms, all with the same world-model trigger (C_H of the proposal > eps_safe):

- `shield_off`: the baseline.
- `pi_rec`: what the stack runs: the learned recovery policy on every trigger.
- `pi_rec_hold_K`: pi_rec keeps control for K ticks after each trigger. If this
  helps, the shield chatters: pi_rec backs off for one tick, the risk drops,
  pi_task pushes again.
- `pi_rec_eps_xS`: eps_safe times S (< 1: the shield fires earlier and more often). If this helps where
  holding does not, the warning comes too late at the calibrated eps_safe.
- `scripted_<style>`: the twin's scripted recovery controller (the teacher of
  pi_rec's demos, in any `recovery.style`) on every trigger. If this cuts
  failures where pi_rec does not, pi_rec is the weak link; if it does not
  either, the warning comes too late or that style cannot recover.

For each arm: failure episodes (with a 95 % bootstrap interval of the paired
difference to shield_off over episodes), successes, trigger rate, and how
each failure was preceded: a *miss* (a task action executed in the last H + 1
ticks) or a *recovery failure* (only recovery actions in that window).

    python benchmarks/twin_shield_diagnosis.py bounded_soccer [--models config/models/bounded_soccer]
        [--episodes 100] [--hold 3 6] [--eps-scales 0.5 0.25] [--styles back_off retreat save]
        [--scripted-hold 6] [--name NAME]

Writes benchmarks/results/<name>.{json,md} (default twin_shield_diagnosis_<task>).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from common import REPO, RESULTS, command_line, machine  # first: one thread, private ROS domain

import numpy as np  # noqa: E402
import torch  # noqa: E402

from farl_common.paths import config_dir  # noqa: E402
from farl_common.recovery_hold import RecoveryHold  # noqa: E402
from farl_learner.shield import RECOVERY, Shield  # noqa: E402
from farl_learner.stats import paired_bootstrap  # noqa: E402
from farl_learner.training.checkpoint import load_checkpoint  # noqa: E402
from farl_learner.training.io import CALIBRATION, CHECKPOINTS, read_json  # noqa: E402
from farl_learner.twin.actors import PolicyActor  # noqa: E402
from farl_learner.twin.config import load_twin_config, make_twin_env  # noqa: E402
from farl_learner.twin.experts import RecoveryController  # noqa: E402

BOOTSTRAP = 10_000
SEED = 30_000  # episode seeds, apart from the pretraining's preview (20_000 + seed)


class Arm:
    """Chooses each tick's action from the proposal, the shield's decision and the arm's recovery."""

    def __init__(self, name: str, shield: Shield | None, hold: int = 0, scripted: RecoveryController | None = None):
        self.name, self.shield, self.scripted = name, shield, scripted
        self.hold = RecoveryHold(hold)  # the shield's hysteresis, as the robot's shield applies it

    def reset(self) -> None:
        self.hold.reset()
        if self.scripted is not None:
            self.scripted.reset()

    def act(self, obs: np.ndarray, proposal: np.ndarray) -> tuple[np.ndarray, str]:
        if self.shield is None:
            return proposal, "task"
        decision = self.shield.decide(obs, proposal)
        if not self.hold.holds(decision.source == RECOVERY):
            return proposal, "task"
        if self.scripted is not None:
            return np.asarray(self.scripted(obs), dtype=np.float32), RECOVERY
        if decision.source == RECOVERY:
            return decision.action, RECOVERY
        with torch.no_grad():  # held: pi_rec's action, as the shield computes it
            action = self.shield.recovery_policy(torch.as_tensor(obs, dtype=torch.float32)[None])[0]
        return action.clamp(-1, 1).numpy(), RECOVERY


def load_folder_shield(models: Path):
    """A model folder's torch networks, its calibration, and the shield they make at its eps_safe:
    (policy, recovery, world_model, calibration, shield). Shared with twin_recovery_replay.py."""
    policy, _ = load_checkpoint(models / CHECKPOINTS["task_policy"], "policy")
    recovery, _ = load_checkpoint(models / CHECKPOINTS["recovery_policy"], "policy")
    world_model, _ = load_checkpoint(models / CHECKPOINTS["world_model"], "world_model")
    calibration = read_json(models / CALIBRATION)
    shield = Shield(policy, recovery, world_model, int(calibration["horizon"]), float(calibration["gamma_risk"]),
                    float(calibration["epsilon_safe"]))
    return policy, recovery, world_model, calibration, shield


def run_arm(env, policy, arm: Arm, episodes: int, correlation: float, horizon: int) -> list[dict]:
    outcomes = []
    for i in range(episodes):
        actor = PolicyActor(policy, True, correlation, seed=SEED + i)  # the same noise in every arm
        obs, _ = env.reset(seed=SEED + i)
        actor.reset()
        arm.reset()
        sources, failed, succeeded, ret = [], False, False, 0.0
        while True:
            action, source = arm.act(obs, actor.propose(obs))
            obs, reward, terminated, truncated, info = env.step(action)
            sources.append(source)
            ret += float(reward)
            failed |= bool(info["failure"])
            succeeded |= bool(info["success"])
            if terminated or truncated:
                break
        window = sources[-(horizon + 1):]
        kind = None
        if failed:
            kind = "recovery_failure" if all(s == RECOVERY for s in window) else "miss"
        outcomes.append({"failure": failed, "success": succeeded, "return": ret, "steps": len(sources),
                         "triggers": sum(s == RECOVERY for s in sources), "failure_kind": kind})
    return outcomes


def summarize(outcomes: list[dict]) -> dict:
    steps = sum(o["steps"] for o in outcomes)
    return {"episodes": len(outcomes), "failure_episodes": int(sum(o["failure"] for o in outcomes)),
            "successes": int(sum(o["success"] for o in outcomes)),
            "mean_return": float(np.mean([o["return"] for o in outcomes])),
            "trigger_rate": sum(o["triggers"] for o in outcomes) / max(steps, 1),
            "misses": sum(o["failure_kind"] == "miss" for o in outcomes),
            "recovery_failures": sum(o["failure_kind"] == "recovery_failure" for o in outcomes)}


def render(results: dict) -> str:
    m = results["machine"]
    lines = [f"# Shield diagnosis in the training twin: {results['task']}", "",
             f"Command: `{results['command']}`", "",
             f"Model folder `{results['models']}` (H = {results['horizon']}, eps_safe {results['epsilon_safe']:.4g}); "
             f"{results['episodes']} seeded episodes per arm, the same starts and the same exploration noise in "
             f"every arm. Machine: {m['cpus']} CPUs, Python {m['python']}, load average {m['load_avg_1min']} at the "
             f"start, {m['date_utc']} UTC; {results['seconds']:.0f} s.", "",
             "| arm | failure episodes | change vs shield off [95 % CI] | misses / recovery failures | successes | "
             "mean return | trigger rate |", "|---|---|---|---|---|---|---|"]
    for name, arm in results["arms"].items():
        change = "" if name == "shield_off" else (f"{arm['change_pct']:+.0f} % [{arm['change_ci95'][0]:+.0f}, "
                                                  f"{arm['change_ci95'][1]:+.0f}]")
        kinds = "" if name == "shield_off" else f"{arm['misses']} / {arm['recovery_failures']}"
        lines.append(f"| {name} | {arm['failure_episodes']} | {change} | {kinds} | {arm['successes']} | "
                     f"{arm['mean_return']:.1f} | {arm['trigger_rate']:.1%} |")
    lines += ["", "Miss: a task action was executed in the last H + 1 ticks before the failure. Recovery failure: "
              "only recovery actions in that window (the warning came, the recovery did not prevent it).", ""]
    return "\n".join(lines)


def main() -> None:
    from farl_common.errors import exit_on_input_error

    with exit_on_input_error("twin_shield_diagnosis"):  # a missing model folder is one line, not a traceback
        run()


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=("bounded_soccer", "disturbed_push", "fragile_push_wall"))
    parser.add_argument("--models", type=Path, default=None, help="model folder [default: config/models/<task>]")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--hold", type=int, nargs="*", default=[3, 6], help="ticks pi_rec keeps control after a trigger")
    parser.add_argument("--eps-scales", type=float, nargs="*", default=[0.5, 0.25],
                        help="eps_safe multipliers to try with pi_rec")
    parser.add_argument("--styles", nargs="*", default=["back_off", "retreat"],
                        help="scripted recovery styles to try in place of pi_rec (push_away: wall tasks only; "
                             "save: an object inside a boundary)")
    parser.add_argument("--scripted-hold", type=int, nargs="*", default=[],
                        help="also run each scripted style held this many ticks after a trigger")
    parser.add_argument("--name", default=None)
    args = parser.parse_args()
    models = args.models or config_dir() / "models" / args.task
    policy, recovery, world_model, calibration, shield = load_folder_shield(models)
    horizon, eps = int(calibration["horizon"]), float(calibration["epsilon_safe"])
    twin = load_twin_config(args.task)
    env = make_twin_env(args.task, twin)
    correlation = env.spec_.exploration_correlation
    arms = [Arm("shield_off", None), Arm("pi_rec", shield)]
    arms += [Arm(f"pi_rec_hold_{k}", shield, hold=k) for k in args.hold]
    arms += [Arm(f"pi_rec_eps_x{scale:g}", Shield(policy, recovery, world_model, horizon,
                                                  float(calibration["gamma_risk"]), eps * scale))
             for scale in args.eps_scales]
    for style in args.styles:
        controller = RecoveryController(env.config, env.spec_, twin.expert,
                                        dataclasses.replace(twin.recovery, style=style))
        for k in sorted({0, *args.scripted_hold}):
            arms.append(Arm(f"scripted_{style}" + (f"_hold_{k}" if k else ""), shield, hold=k, scripted=controller))
    started = time.monotonic()
    shown = models.resolve().relative_to(REPO) if models.resolve().is_relative_to(REPO) else models
    results = {"task": args.task, "models": str(shown), "horizon": horizon, "epsilon_safe": eps,
               "episodes": args.episodes, "command": command_line(), "machine": machine(), "arms": {}}
    off = None
    for arm in arms:
        t0 = time.monotonic()
        outcomes = run_arm(env, policy, arm, args.episodes, correlation, horizon)
        summary = summarize(outcomes)
        if off is None:
            off = outcomes
        else:
            paired = paired_bootstrap([float(o["failure"]) for o in outcomes], [float(o["failure"]) for o in off],
                                      resamples=BOOTSTRAP)
            summary["change_pct"], summary["change_ci95"] = paired["change_pct"], paired["change_pct_ci95"]
        results["arms"][arm.name] = summary
        print(f"[diagnosis] {arm.name}: {summary['failure_episodes']} failure episodes "
              f"({summary['misses']} misses, {summary['recovery_failures']} recovery failures), "
              f"{summary['successes']} successes, trigger rate {summary['trigger_rate']:.1%} "
              f"({time.monotonic() - t0:.0f} s)", flush=True)
    results["seconds"] = time.monotonic() - started
    name = args.name or f"twin_shield_diagnosis_{args.task}"
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(render(results))
    print(f"[diagnosis] wrote {RESULTS / name}.md")


if __name__ == "__main__":
    main()
