"""finetune(): online fine-tuning of a pretrained task policy by one of the methods of training/methods.py.

Reads the folder `pretrain()` wrote, evaluates the task policy, runs the
online loop (training/online.py) for `steps` environment steps, evaluates
again, and writes the fine-tuned policy and finetune.json (config, counters,
PPO statistics, raw and normalized returns before/after) to `out_dir`.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import gymnasium as gym
import torch

from farl_common.errors import FarlInputError

from ..config import FarlConfig, load_farl_config
from ..models import GaussianPolicy
from .checkpoint import load_checkpoint, save_checkpoint
from .io import CALIBRATION, CHECKPOINTS, FAILURE_DATA, read_json, write_json
from .methods import METHODS, SHIELDED, check_method, make_learner, make_shield
from .online import evaluate, run_online

__all__ = ["METHODS", "evaluate_run", "finetune", "load_pretrained", "shield_threshold"]

#: The risk settings eps_safe was calibrated under: a run that asks for other values needs its own eps_safe.
#: (Not holdout_fraction: the world model was trained on the rest of that split.)
CALIBRATION_SETTINGS = ("horizon", "gamma_risk", "target_miss_rate", "max_needless_trigger_rate")


def load_pretrained(model_dir: str | Path, task: str) -> dict:
    """The four pretrained networks and eps_safe of `model_dir`, checked against each other."""
    model_dir = Path(model_dir)
    policy, meta = load_checkpoint(model_dir / CHECKPOINTS["task_policy"], "policy")
    if meta.get("task") not in (None, task):
        raise FarlInputError(model_dir / CHECKPOINTS["task_policy"], f"was trained for task {meta.get('task')!r}, "
                                                                    f"not {task!r}", key="task")
    dims = {"obs_dim": policy.obs_dim}
    value, _ = load_checkpoint(model_dir / CHECKPOINTS["task_value"], "value", expect=dims)
    recovery, _ = load_checkpoint(model_dir / CHECKPOINTS["recovery_policy"], "policy",
                                  expect={**dims, "action_dim": policy.action_dim})
    world_model, _ = load_checkpoint(model_dir / CHECKPOINTS["world_model"], "world_model",
                                     expect={**dims, "action_dim": policy.action_dim})
    calibration = read_json(model_dir / CALIBRATION)
    if not isinstance(calibration.get("epsilon_safe"), (int, float)):
        raise FarlInputError(model_dir / CALIBRATION, "missing a numeric epsilon_safe", key="epsilon_safe")
    return {"policy": policy, "value": value, "recovery": recovery.requires_grad_(False),
            "world_model": world_model.requires_grad_(False).eval(), "calibration": calibration}


def shield_threshold(models: dict, cfg: FarlConfig, model_dir: str | Path, progress: bool = False) -> tuple[float, dict]:
    """eps_safe for this run and where it comes from: the config, the model folder, or a recalibration.

    The model folder's eps_safe holds for the risk settings it was calibrated
    under (pretrain.json's config). A run that asks for another operating point
    (e.g. `--set risk.max_needless_trigger_rate=0.15`) or another horizon gets
    eps_safe recalibrated on the same held-out failure episodes with the same
    pretrained policy, instead of silently running at the old point; a fixed
    `risk.epsilon_safe` > 0 always wins.
    """
    from .pretrain import calibrate

    model_dir = Path(model_dir)
    stored = models["calibration"]
    if cfg.risk.epsilon_safe > 0:
        return cfg.risk.epsilon_safe, {"source": "config", "epsilon_safe": cfg.risk.epsilon_safe}
    pretrain_file = model_dir / "pretrain.json"
    made_with = read_json(pretrain_file).get("config", {}) if pretrain_file.is_file() else {}
    old = made_with.get("risk", {})
    changed = {k: (old[k], getattr(cfg.risk, k)) for k in CALIBRATION_SETTINGS
               if k in old and old[k] != getattr(cfg.risk, k)}
    kept = {k: stored.get(k) for k in ("epsilon_safe", "recall", "needless_trigger_rate", "limited_by")}
    if not changed:
        return float(stored["epsilon_safe"]), {"source": "model folder", **kept}
    what = ", ".join(f"risk.{k} {a} -> {b}" for k, (a, b) in changed.items())
    path = model_dir / FAILURE_DATA
    if not path.is_file():
        raise FarlInputError(path, f"not found: the config changes {what} from the calibration in "
                                   f"{model_dir / CALIBRATION}, and recalibrating eps_safe needs the held-out "
                                   "failure data; set risk.epsilon_safe, or run `farl pretrain` for this folder again")
    from ..agents.transitions import Transitions
    from ..data import load_dataset

    data = Transitions.from_arrays(load_dataset(path))
    _, holdout = data.split_episodes(float(old.get("holdout_fraction", cfg.risk.holdout_fraction)),
                                     int(made_with.get("seed", cfg.seed)))
    result = calibrate(models["world_model"], models["policy"], holdout, cfg)
    if progress:
        print(f"eps_safe recalibrated for {what}: {float(stored['epsilon_safe']):.3g} -> "
              f"{result['epsilon_safe']:.3g} (held-out recall {result['recall']:.2f}, needless triggers "
              f"{result['needless_trigger_rate']:.2f})", flush=True)
    return float(result["epsilon_safe"]), {
        "source": "recalibrated", "changed": {k: list(v) for k, v in changed.items()},
        "model_folder": kept, **{k: result[k] for k in ("epsilon_safe", "recall", "needless_trigger_rate",
                                                          "limited_by")}}


def _normalizer(task: str) -> Callable[[float], float | None]:
    """FailureBench's normalized return if the task has reference returns, else None."""
    def normalize(raw: float) -> float | None:
        try:
            from ..envs import normalized_return

            return normalized_return(task, raw)
        except (FarlInputError, ImportError):
            return None
    return normalize


def finetune(task: str, model_dir: str | Path, out_dir: str | Path, method: str = "farl", steps: int | None = None,
             seed: int = 0, cfg: FarlConfig | None = None, env: gym.Env | list[gym.Env] | None = None,
             progress: bool = True,
             count_needless: bool = False, on_update: Callable[[GaussianPolicy, int], None] | None = None) -> dict:
    """Fine-tune online; returns the metrics written to out_dir/finetune.json.

    `env`: one env or a list (the parallel envs of the online loop); default
    cfg.online.num_envs FailureBench envs. The first one also runs the evaluations.
    """
    check_method(method)
    cfg = cfg or load_farl_config(task)
    torch.set_num_threads(cfg.online.torch_threads)
    steps = steps if steps is not None else cfg.online.total_steps
    models = load_pretrained(model_dir, task)
    if env is None:
        from ..envs import make_env

        env = [make_env(task, seed=seed + 1000 * i, terminate_on_failure=True) for i in range(cfg.online.num_envs)]
    envs = env if isinstance(env, (list, tuple)) else [env]
    epsilon, calibration = shield_threshold(models, cfg, model_dir, progress=progress and method in SHIELDED)
    shield, shield_facts = make_shield(method, models, epsilon, cfg, model_dir, out_dir, seed, progress=progress)
    learner = make_learner(method, models["policy"], models["value"], cfg)
    normalize = _normalizer(task)

    before = evaluate(envs[0], models["policy"], cfg.online.eval_episodes, seed=10_000 + seed)
    start = time.perf_counter()
    counters, updates = run_online(envs, models["policy"], models["value"], cfg.ppo, steps, seed, shield=shield,
                                   progress=progress, count_needless=count_needless, on_update=on_update,
                                   learner=learner)
    elapsed = time.perf_counter() - start
    after = evaluate(envs[0], models["policy"], cfg.online.eval_episodes, seed=10_000 + seed)
    for result in (before, after):
        result["normalized_return"] = normalize(result["mean_return"])

    out_dir = Path(out_dir)
    meta = {"task": task, "seed": seed, "method": method, "steps": steps}
    save_checkpoint(out_dir / CHECKPOINTS["task_policy"], "policy", models["policy"], meta)
    save_checkpoint(out_dir / CHECKPOINTS["task_value"], "value", models["value"], meta)
    metrics = {"task": task, "method": method, "seed": seed, "steps": steps,
               "epsilon_safe": shield.epsilon_safe if shield else None, **shield_facts,
               "shield_calibration": calibration if shield else None,
               "config": cfg.to_dict(), "before": before, "after": after, "counters": counters.to_dict(),
               "ppo_updates": updates, "online_seconds": elapsed, "num_envs": len(envs),
               "steps_per_second": counters.steps / max(elapsed, 1e-9)}
    write_json(out_dir / "finetune.json", metrics)
    return metrics


def evaluate_run(task: str, model_dir: str | Path, run_dir: str | Path, seed: int, episodes: int,
                 before: bool = True) -> dict:
    """A finished run's policy before and after fine-tuning, each over `episodes` deterministic episodes.

    finetune() evaluates with the config's online.eval_episodes (10 in the
    protocol), where one run's mean return has a standard error of about 10
    normalized points: as large as the differences between methods. This
    re-evaluates the saved policies with more episodes, on the same episode
    seeds for every method of a seed (paired), without re-running the
    fine-tuning; the result is cached in run_dir/evaluation-<episodes>.json.
    `before=False` skips the pretrained policy (the same for every method of a
    seed: the grid evaluates it once per seed).
    """
    from ..envs import make_env

    run_dir = Path(run_dir)
    path = run_dir / f"evaluation-{episodes}.json"
    if path.is_file():
        cached = read_json(path)
        if "before" in cached or not before:
            return cached
    env = make_env(task, seed=seed, terminate_on_failure=True)
    normalize = _normalizer(task)
    out = {"task": task, "seed": seed, "episodes": episodes}
    for name, folder in ((("before", Path(model_dir)),) if before else ()) + (("after", run_dir),):
        policy, _ = load_checkpoint(folder / CHECKPOINTS["task_policy"], "policy")
        result = evaluate(env, policy.eval(), episodes, seed=10_000 + seed)
        out[name] = {**result, "normalized_return": normalize(result["mean_return"])}
    write_json(path, out)
    return out
