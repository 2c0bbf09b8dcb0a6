"""What the `farl` learning subcommands share: task names, budget profiles, config overrides.

Budget profiles are named sets of dotted config overrides applied on top of
config/farl/<task>.yaml. `paper` applies none (the paper-faithful defaults);
`quick` shrinks the offline gradient-step budgets and the failure data so that
all four FailureBench tasks pretrain on a couple of CPU cores in minutes;
`smoke` is for tests. The profile name and its overrides are written into
every JSON a command produces, so a result always says which budget made it.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from farl_common.config import parse_overrides  # noqa: F401 - the one --set parser, re-exported for commands
from farl_common.errors import FarlInputError

TOY = "toy"

#: Offline budgets per profile (dotted keys of FarlConfig), plus "failure_transitions" (failure data size).
PROFILES: dict[str, dict[str, Any]] = {
    "paper": {},
    "quick": {  # sized for 4 tasks on 2 shared CPU cores in ~15 min of pretraining (failurebench_protocol.md's cost table)
        "bc.ensemble_size": 2, "bc.steps": 1000, "offline.critic_steps": 1000, "offline.policy_steps": 300,
        "recovery_bc.steps": 1000, "recovery_offline.critic_steps": 1000, "recovery_offline.policy_steps": 300,
        "world_model.steps": 1200, "online.eval_episodes": 5, "failure_transitions": 8000,
    },
    "smoke": {
        "networks.policy_hidden": [32, 32], "networks.value_hidden": [32, 32],
        "bc.ensemble_size": 2, "bc.steps": 60, "offline.critic_steps": 60, "offline.policy_steps": 20,
        "recovery_bc.steps": 60, "recovery_offline.critic_steps": 40, "recovery_offline.policy_steps": 20,
        "world_model.steps": 80, "world_model.hidden": [32, 32], "world_model.latent_dim": 8,
        "world_model.batch_size": 64, "risk.horizon": 4, "ppo.num_steps": 100, "ppo.update_epochs": 2,
        "ppo.num_minibatches": 2, "online.eval_episodes": 2, "failure_transitions": 6000,
    },
}


def task_names() -> tuple[str, ...]:
    from ..envs.spec import TASK_NAMES

    return tuple(TASK_NAMES)


def check_task(task: str) -> str:
    """A FailureBench task name or `toy`; anything else is one FarlInputError line."""
    known = task_names()
    if task != TOY and task not in known:
        raise FarlInputError(None, f"unknown task {task!r}; known: {', '.join(known)}, {TOY}", key="task")
    return task


def add_task_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", help="FailureBench task (bounded_push, bounded_soccer, fragile_push_wall, "
                                     "obstructed_push) or 'toy' (the 1-D test task)")


def add_budget_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", choices=sorted(PROFILES), default="paper",
                        help="budget profile on top of config/farl/<task>.yaml (default: paper = no change)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config key, e.g. --set ppo.learning_rate=1e-4 (repeatable; "
                             "values are parsed as JSON/YAML scalars or lists)")


def profile_overrides(profile: str) -> tuple[dict[str, Any], int | None]:
    """(config overrides, failure-data size or None) of a profile."""
    if profile not in PROFILES:
        raise FarlInputError(None, f"unknown profile {profile!r}; known: {', '.join(PROFILES)}", key="--profile")
    overrides = dict(PROFILES[profile])
    failure_transitions = overrides.pop("failure_transitions", None)
    return overrides, failure_transitions


def load_config(task: str, profile: str = "paper", extra: dict[str, Any] | None = None):
    """FarlConfig of `task` (+ profile + --set overrides); returns (cfg, budget record)."""
    from ..config import FarlConfig, apply_overrides, load_farl_config

    overrides, failure_transitions = profile_overrides(profile)
    extra = dict(extra or {})
    if "failure_transitions" in extra:
        failure_transitions = int(extra.pop("failure_transitions"))
    overrides.update(extra)
    if task == TOY:  # no YAML: the smoke sizes suit the 1-D task, the profile and --set apply on top
        base = {k: v for k, v in PROFILES["smoke"].items() if k != "failure_transitions"}
        cfg = apply_overrides(FarlConfig(task=TOY), {**base, **overrides})
    else:
        cfg = load_farl_config(task, overrides)
    budget = {"profile": profile, "overrides": overrides, "failure_transitions": failure_transitions}
    return cfg, budget


def make_task_env(task: str, seed: int):
    """The training/evaluation env of a task (episodes end on failure)."""
    if task == TOY:
        from ..training.toy import ReachEnv

        return ReachEnv(seed=seed)
    from ..envs import make_env

    return make_env(task, seed=seed, terminate_on_failure=True)


def require_dir(path: str | Path, what: str, files: tuple[str, ...] = ()) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise FarlInputError(path, f"{what} folder not found")
    for name in files:
        if not (path / name).is_file():
            raise FarlInputError(path / name, f"missing: not a {what} folder")
    return path


def print_json_summary(title: str, payload: dict[str, Any]) -> None:
    print(f"{title}: {json.dumps(payload, default=str)}")


def invoked_command(subcommand: str, fallback: str) -> str:
    """The `farl <subcommand> ...` line as typed (recorded in command.json), else `fallback`
    (called from Python, not from the CLI)."""
    import shlex
    import sys

    if len(sys.argv) > 1 and sys.argv[1] == subcommand:
        return f"farl {subcommand} " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    return fallback
