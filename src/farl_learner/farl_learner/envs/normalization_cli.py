"""CLI: measure the random and expert reference returns and write
config/failurebench/normalization.json (see `farl_learner.envs.normalization`).

    python -m farl_learner.envs.normalization_cli --episodes 10 --seed 0
"""
from __future__ import annotations

import argparse

from farl_common.errors import exit_on_input_error

from .normalization import measure_normalization
from .spec import TASK_NAMES


def main(argv: list[str] | None = None) -> None:
    """CLI: measure and write config/failurebench/normalization.json."""
    parser = argparse.ArgumentParser(prog="python -m farl_learner.envs.normalization_cli", description=__doc__)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tasks", nargs="*", default=list(TASK_NAMES), choices=TASK_NAMES)
    args = parser.parse_args(argv)
    with exit_on_input_error("normalization"):
        result = measure_normalization(tuple(args.tasks), args.episodes, args.seed)
    for task, n in result.items():
        print(f"{task}: random {n.random.mean_return:.1f} (fail {n.random.failure_rate:.0%}) "
              f"expert {n.expert.mean_return:.1f} (fail {n.expert.failure_rate:.0%}, "
              f"success {n.expert.success_rate:.0%})")


if __name__ == "__main__":
    main()
