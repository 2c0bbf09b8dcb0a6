"""The benchmark grid: (task, method, seed) runs, each with a key, run on Ray, never run twice.

A FailureBench comparison is a grid of independent runs, e.g. 7 methods x 4
tasks x 5 seeds = 140 runs of minutes to hours each. `run_grid` hands them to
Ray: a local instance with this machine's cores by default (`jobs` CPUs), or a
running cluster (`ray_address`, e.g. "ray://head:10001" or "auto"), where
every node must have this package installed. One run is one Ray task
(num_cpus=1, torch with one thread).

- **Keys.** A run is identified by task, method, seed and a hash of the config
  it runs with (`config_hash`), so changing a setting makes new runs instead of
  silently mixing results, and the key decides the run folder.
- **Never recomputed.** Before anything is submitted, each run's folder is
  checked for a finished result with the same key (`finished`); those are
  returned at once (`GridRun.cached`), so a re-run of an interrupted grid
  resumes it.
- **Retried.** A run whose worker process dies (killed, out of memory, a node
  lost) is resubmitted by Ray up to `retries` times. An exception inside a run
  is a result, not a crash: it is reported with its key and the grid goes on.
- **Partial results.** Results are yielded as runs finish, whatever the order,
  so the caller rewrites its results file after each one.

With jobs = 1 and no address, the runs go one after the other in this process
(no Ray start-up): the cheap path for a single run and for debugging.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from .training.methods import SHIELDED

#: Config sections only some methods read: a change there must not invalidate the other methods' runs.
METHOD_SECTIONS = {"safe_rl": ("ppo-lag", "p3o", "cpo"), "ablation": ("farl-qrisk", "farl-mppi")}
#: Settings only the shielded methods read (the shield's threshold, what the learner does where it acted).
#: A FARL variant (another eps_safe operating point, another trigger penalty) must not re-run Uni-O4.
SHIELD_SETTINGS = {"risk": None, "ppo": ("recovery_pg_weight", "trigger_penalty")}


def config_hash(config: dict, method: str, steps: int) -> str:
    """12 hex digits over the settings the run depends on: its config (minus other methods' sections) and steps."""
    relevant = {k: v for k, v in config.items() if k not in METHOD_SECTIONS or method in METHOD_SECTIONS[k]}
    if method not in SHIELDED:
        for section, keys in SHIELD_SETTINGS.items():
            if keys is None:
                relevant.pop(section, None)
            elif isinstance(relevant.get(section), dict):
                relevant[section] = {k: v for k, v in relevant[section].items() if k not in keys}
    text = json.dumps({"config": relevant, "method": method, "steps": steps}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class RunKey:
    task: str
    method: str
    seed: int
    config_hash: str

    def folder(self, work: str | Path) -> Path:
        return Path(work) / self.task / self.method / f"seed{self.seed}-{self.config_hash}"

    def __str__(self) -> str:
        return f"{self.task} {self.method} seed {self.seed} [{self.config_hash}]"


@dataclass
class GridRun:
    """One run: its key, the call that makes it (a module-level function), and its result if it already exists
    (`finished` for a fine-tuning run; the caller knows what "finished" means for other kinds of run)."""

    key: Any
    fn: Callable[..., Any]
    args: tuple
    cached: Any = None


@dataclass
class GridResult:
    key: Any
    metrics: Any  # what the run returned (finetune.json's metrics for a fine-tuning run), None if it failed
    error: str | None = None
    cached: bool = False


def finished(folder: Path, key: RunKey, legacy: Path | None = None) -> dict | None:
    """The finished run's metrics in `folder`, a legacy folder, or a sibling folder of the same seed, if they
    were made with this key, else None.

    Siblings count because a folder's name is the hash the run got when it was made: when the hash leaves
    out settings it used to cover (SHIELD_SETTINGS), the runs already made still match by their content.
    """
    siblings = sorted(folder.parent.glob(f"seed{key.seed}-*")) if folder.parent.is_dir() else []
    for candidate in (folder, legacy, *[s for s in siblings if s != folder]):
        path = None if candidate is None else candidate / "finetune.json"
        if path is None or not path.is_file():
            continue
        try:
            metrics = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # a half-written file from a killed run: run it again
        if config_hash(metrics.get("config", {}), key.method, metrics.get("steps", -1)) == key.config_hash:
            return {**metrics, "run_dir": str(candidate)}
    return None


def run_grid(runs: list[GridRun], jobs: int = 1, ray_address: str | None = None,
             retries: int = 2) -> Iterator[GridResult]:
    """Yield a GridResult per run as it finishes: cached ones first, then the rest from Ray (or in process)."""
    todo = []
    for run in runs:
        if run.cached is not None:
            yield GridResult(run.key, run.cached, cached=True)
        else:
            todo.append(run)
    if not todo:
        return
    if jobs <= 1 and ray_address is None:
        for run in todo:
            yield _call_in_process(run)
        return
    yield from _run_on_ray(todo, jobs, ray_address, retries)


def _call_in_process(run: GridRun) -> GridResult:
    try:
        return GridResult(run.key, run.fn(*run.args))
    except Exception as error:  # noqa: BLE001 - one run's failure is reported; the grid goes on
        return GridResult(run.key, None, f"{type(error).__name__}: {error}")


def _execute(fn: Callable[..., Any], args: tuple) -> Any:
    """The body of every Ray task: torch with one thread (the CPU Ray reserved for it), then the run."""
    import torch

    torch.set_num_threads(1)
    return fn(*args)


def _run_on_ray(runs: list[GridRun], jobs: int, ray_address: str | None, retries: int) -> Iterator[GridResult]:
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        if ray_address is None:
            # A local instance talks on the loopback only: nothing of it is reachable from the network.
            # address="local": always a new instance of our own, never another user's cluster on this machine.
            ray.init(address="local", num_cpus=max(1, jobs), include_dashboard=False, log_to_driver=False,
                     logging_level="warning", _node_ip_address="127.0.0.1")
        else:
            ray.init(address=ray_address, log_to_driver=False, logging_level="warning")
    try:
        remote = ray.remote(num_cpus=1, max_retries=retries, retry_exceptions=False)(_execute)
        pending = {remote.remote(run.fn, run.args): run for run in runs}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            run = pending.pop(done[0])
            try:
                yield GridResult(run.key, ray.get(done[0]))
            except ray.exceptions.RayTaskError as error:
                cause = error.cause if getattr(error, "cause", None) is not None else error
                yield GridResult(run.key, None, f"{type(cause).__name__}: {cause}")
            except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                    ray.exceptions.OutOfMemoryError) as error:
                yield GridResult(run.key, None, f"the run's worker died {retries + 1} times: {type(error).__name__}")
            except ray.exceptions.RayError as error:  # e.g. the run could not be unpickled on its node
                yield GridResult(run.key, None, f"{type(error).__name__}: {error}")
    finally:
        if started_here:
            ray.shutdown()
