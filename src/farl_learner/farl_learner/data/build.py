"""Cached offline datasets per task: task demos + recovery demos.

`build_offline_datasets(task, out_dir, seed)` generates both (failure data needs
a pre-trained policy, so it is a separate step: `generate_failure_data`) and
caches each under a name that carries a hash of everything that determines its
content: the dataset format version, `GENERATOR_VERSION`, the task's YAML file,
the seed and the demo count. A change of any of them is a cache miss; an
existing cached file that fails to load (corrupt, truncated) is regenerated.

CLI: python -m farl_learner.data.build --task bounded_push --out data/failurebench --seed 0
"""
from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from farl_common.errors import FarlInputError

from ..envs.spec import TASK_NAMES, load_task_spec
from .config import load_data_config
from .demos import generate_task_demos
from .format import FORMAT_VERSION, Dataset, load_dataset, save_dataset
from .recovery import generate_recovery_demos

#: Bump when the generation code changes what it produces for the same config.
GENERATOR_VERSION = 1


@dataclass(frozen=True)
class OfflineDatasets:
    task: Dataset
    recovery: Dataset | None  # None when not asked for (recovery=False)
    task_path: Path
    recovery_path: Path


def params_hash(task: str, kind: str, seed: int, n: int) -> str:
    """Short hash of what determines a dataset's content (see the module docstring)."""
    spec = load_task_spec(task)
    doc = {
        "format_version": FORMAT_VERSION, "generator_version": GENERATOR_VERSION, "task": task, "kind": kind,
        "seed": seed, "n": n, "config": spec.config_path.read_text(),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:12]


def _cached(path: Path, task: str, generate) -> Dataset:
    if path.is_file():
        try:
            return load_dataset(path, expect_task=task)
        except FarlInputError as error:
            print(f"warning: regenerating unusable cache file: {error}", file=sys.stderr)
    dataset = generate()
    save_dataset(path, dataset)
    return dataset


def build_offline_datasets(task: str, out_dir: str | Path, seed: int = 0, n_task_demos: int | None = None,
                           n_recovery_demos: int | None = None, progress: bool = True,
                           recovery: bool = True) -> OfflineDatasets:
    """Task demos (kind 0) and, unless `recovery` is False, recovery demos (kind 1) for `task`, from cache
    when possible.

    Files: <out_dir>/<task>_task_<hash>.npz and <task>_recovery_<hash>.npz.
    """
    cfg = load_data_config(task)
    n_task = cfg.task_demos if n_task_demos is None else n_task_demos
    n_rec = cfg.recovery_demos if n_recovery_demos is None else n_recovery_demos
    out = Path(out_dir)
    task_path = out / f"{task}_task_{params_hash(task, 'task', seed, n_task)}.npz"
    rec_path = out / f"{task}_recovery_{params_hash(task, 'recovery', seed, n_rec)}.npz"
    task_ds = _cached(task_path, task, lambda: generate_task_demos(task, n_task, seed, cfg, progress))
    rec_ds = _cached(rec_path, task, lambda: generate_recovery_demos(task, n_rec, seed, cfg, progress)) if recovery \
        else None
    return OfflineDatasets(task_ds, rec_ds, task_path, rec_path)


def main(argv: list[str] | None = None) -> None:
    import argparse

    from farl_common.errors import exit_on_input_error

    parser = argparse.ArgumentParser(prog="python -m farl_learner.data.build",
                                     description="Generate (or reuse cached) task and recovery demos.")
    parser.add_argument("--task", nargs="+", default=list(TASK_NAMES), choices=TASK_NAMES)
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    with exit_on_input_error("build"):
        for task in args.task:
            built = build_offline_datasets(task, args.out, args.seed)
            for ds, path in ((built.task, built.task_path), (built.recovery, built.recovery_path)):
                print(f"{path}: {len(ds)} transitions, {ds.n_episodes} episodes, "
                      f"generated in {ds.meta.get('seconds', '?')} s")


if __name__ == "__main__":
    main()
