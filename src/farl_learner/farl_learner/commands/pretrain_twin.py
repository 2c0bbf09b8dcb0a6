"""`farl pretrain-twin <task> --out DIR`: the stack's pretrained model folder, from the training twin.

Everything FARL learns offline for a real-robot task (Fragile Push Wall on the
FR3), in the twin (farl_learner.twin: the served franky-sim scene stepped
in-process), then exported as the model folder the ROS 2 stack loads
(config/models/<task>/, the stack YAML's default `models_dir`):

    1. twin task demos (medium expert) + recovery demos (scripted recovery from
       near-failure states): twin.data generators, cached under --data in
       build_twin_datasets' own cache folder (so a `python -m farl_learner.twin.data`
       run with the same settings is reused, and vice versa)
    2. Uni-O4 task policy: BC ensemble + offline clipped improvement
    3. failure data: noise injected into THAT pretrained policy's mean in the twin
       (twin.data.collect_failure_data: AR(1) action noise + random actions, plus
       the twin's documented goal lure in `failure_lure_prob` of the episodes),
       cached under --data by a hash of the policy's weights; when that gives fewer
       than --min-failure-episodes failure episodes (the pretrained policy is cautious:
       0 of 42 at the default size), the twin's stand-in failure set from
       build_twin_datasets (the expert without wall avoidance, same noise and lure
       recipe) is added, and pretrain.json says so
    4. recovery policy, 5. world model, 6. eps_safe calibration on held-out
       failure episodes (training.pretrain.pretrain, unchanged recipe)
    7. export: policy.onnx, recovery.onnx, risk.onnx, manifest.json (obs layout =
       TaskSpec.layout()), next to the torch checkpoints + calibration.json the
       learner node starts from; then the shield runtime loads the folder and
       its decide() latency is measured.

Writes pretrain.json (config, data statistics, timings, metrics, shield check)
and command.json (the exact command). Datasets never go into the model folder.
"""
from __future__ import annotations

import argparse
import hashlib
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from farl_common.errors import FarlInputError

from .common import add_budget_arguments, parse_overrides, profile_overrides

DEFAULT_CONFIG = "farl/franka/fragile_push_wall.yaml"
TWIN_TASKS = ("fragile_push_wall",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", choices=TWIN_TASKS, help="real-robot task with a training twin")
    parser.add_argument("--out", required=True, help="model folder to write (the stack's default: "
                                                     "config/models/<task>)")
    parser.add_argument("--config", default=DEFAULT_CONFIG,
                        help=f"FARL hyper-parameters, relative to config/ or absolute [default: {DEFAULT_CONFIG}]")
    parser.add_argument("--data", default="data/twin", help="dataset cache folder (git-ignored) [default: data/twin]")
    parser.add_argument("--seed", type=int, default=None, help="seed (default: the config's)")
    parser.add_argument("--task-episodes", type=int, default=None, help="task demos (default: twin YAML, 20)")
    parser.add_argument("--recovery-episodes", type=int, default=None,
                        help="recovery demos (default: twin YAML, 120)")
    parser.add_argument("--failure-transitions", type=int, default=8000,
                        help="failure-data size from the pretrained policy [default: 8000]")
    parser.add_argument("--failure-lure-prob", type=float, default=None,
                        help="fraction of failure-data episodes with the goal lured behind the wall "
                             "(default: twin YAML data.failure_lure_prob)")
    parser.add_argument("--min-failure-episodes", type=int, default=20,
                        help="below this many failure episodes from the pretrained policy, its data is combined "
                             "with the twin's stand-in failure set (build_twin_datasets) [default: 20]")
    parser.add_argument("--latency-samples", type=int, default=500, help="shield decide() calls timed [default: 500]")
    add_budget_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from farl_common.paths import resolve_config_path

    from ..config import load_farl_config
    from ..training.io import write_json
    from ..twin.data import build_twin_datasets

    started = time.perf_counter()
    config_path = resolve_config_path(args.config)
    overrides, _ = profile_overrides(args.profile)
    overrides.update(parse_overrides(args.overrides))
    if args.seed is not None:
        overrides["seed"] = args.seed
    cfg = load_farl_config(Path(config_path), overrides)
    if cfg.task != args.task:
        raise FarlInputError(config_path, f"says task {cfg.task!r}, expected {args.task!r}", key="task")
    torch.set_num_threads(cfg.online.torch_threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    stages = tqdm(total=4, desc="pretrain-twin", unit="stage", dynamic_ncols=True)
    stages.set_postfix_str("twin demos")
    t0 = time.perf_counter()
    demos, demo_info = twin_demos(args.task, args.data, cfg.seed, args.task_episodes, args.recovery_episodes)
    demo_seconds = time.perf_counter() - t0
    stages.update(1)

    failure_info: dict = {}

    def failure_source(policy):
        from ..agents.transitions import Transitions

        stages.set_postfix_str("failure data (noise into the pretrained policy)")
        data, info = twin_failure_data(args.task, policy, args.data, cfg.seed, args.failure_transitions,
                                       args.failure_lure_prob)
        failure_info["pretrained_policy"] = info
        failed = int(info["stats"].get("failure_episodes", 0))
        if failed >= args.min_failure_episodes:
            failure_info["combined_with_stand_in"] = False
            return data
        # Too few failures to train the constraint head and calibrate eps_safe on: add the
        # twin's own failure set (build_twin_datasets: the expert without wall avoidance, same
        # noise recipe and goal lure), which reaches the wall in about half its episodes.
        stages.set_postfix_str("failure data (+ twin stand-in set)")
        built = build_twin_datasets(args.task, args.data, seed=cfg.seed, progress=True)
        stand_in = Transitions.from_arrays(built.failure)
        failure_info["combined_with_stand_in"] = True
        failure_info["reason"] = (f"noise into the pretrained policy gave {failed} failure episodes "
                                  f"(< --min-failure-episodes {args.min_failure_episodes})")
        failure_info["stand_in"] = {"path": str(built.paths["failure"]), "seconds": built.seconds["failure"],
                                    "transitions": len(stand_in), "stats": built.failure.meta.get("stats", {})}
        print(f"failure data: {failure_info['reason']}; combined with the twin's stand-in failure set "
              f"({built.failure.meta.get('stats', {}).get('failure_episodes')} failure episodes)", file=sys.stderr)
        return Transitions.concat([data, stand_in])

    stages.set_postfix_str("task policy, failure data, recovery, world model, eps_safe")
    from ..training.pretrain import pretrain

    try:
        metrics = pretrain(args.task, None, out, cfg, datasets=demos, progress=True, failure_source=failure_source)
    except ValueError as error:
        if "failure-preceding" not in str(error):
            raise
        raise FarlInputError(None, f"{error}: collect more failure data (--failure-transitions, "
                                   "--failure-lure-prob)") from None
    stages.update(1)

    stages.set_postfix_str("export")
    t0 = time.perf_counter()
    manifest, parity = export_folder(args.task, out, cfg)
    export_seconds = time.perf_counter() - t0
    stages.update(1)

    stages.set_postfix_str("shield check")
    shield = shield_check(args.task, out, demos, args.latency_samples, cfg.seed)
    stages.update(1)
    stages.close()

    wall = time.perf_counter() - started
    metrics["timings"] = {"twin_demos_s": demo_seconds, **metrics["timings"], "export_s": export_seconds,
                          "total_s": wall}
    metrics["twin_data"] = {**demo_info, "failure": failure_info}
    metrics["export"] = {"parity_max_abs_diff": parity, "files": sorted(manifest.models)}
    metrics["shield_check"] = shield
    metrics["folder_bytes"] = folder_bytes(out)
    write_json(out / "pretrain.json", metrics)
    command = "farl pretrain-twin " + " ".join(shlex.quote(a) for a in sys.argv[2:]) \
        if len(sys.argv) > 1 and sys.argv[1] == "pretrain-twin" else None
    write_json(out / "command.json", {
        "command": command or f"farl pretrain-twin {args.task} --out {args.out}",
        "task": args.task, "config": str(args.config), "data": str(args.data),
        "budget": {"profile": args.profile, "overrides": overrides, "failure_transitions": args.failure_transitions,
                   "failure_lure_prob": failure_info.get("pretrained_policy", {}).get("lure_prob"),
                   "min_failure_episodes": args.min_failure_episodes},
        "wall_seconds": wall})
    cal = metrics["calibration"]
    print(f"{out}: pretrained {args.task} in {wall:.0f} s; eps_safe {cal['epsilon_safe']:.4g} "
          f"(held-out miss rate {cal.get('miss_rate', float('nan')):.3f}, needless-trigger rate "
          f"{cal.get('needless_trigger_rate', float('nan')):.3f}); shield decide() p50 "
          f"{shield['latency_ms']['p50']:.2f} ms, p99 {shield['latency_ms']['p99']:.2f} ms; "
          f"folder {metrics['folder_bytes'] / 1e6:.2f} MB")
    return 0


# ---- data ----------------------------------------------------------------------
def _twin_env(task: str):
    from ..twin import load_twin_config, make_twin_env

    twin = load_twin_config(task)
    return make_twin_env(task, twin), twin


def twin_demos(task: str, data_dir: str | Path, seed: int, task_episodes: int | None,
               recovery_episodes: int | None) -> tuple[dict, dict]:
    """Task + recovery demos as Transitions, cached where build_twin_datasets caches them.

    build_twin_datasets also generates failure data from a stand-in policy (the
    expert without wall avoidance); ours must come from the pretrained policy,
    so only its two demo generators run here, into the folder (and file names)
    build_twin_datasets uses for the same settings, so either reuses the other's files.
    """
    from ..agents.transitions import Transitions
    from ..data.format import load_dataset, save_dataset
    from ..twin.data import GENERATOR_VERSION, dataset_key, generate_recovery_demos, generate_task_demos

    env, twin = _twin_env(task)
    sizes = {"task_episodes": twin.data.task_episodes if task_episodes is None else task_episodes,
             "recovery_episodes": twin.data.recovery_episodes if recovery_episodes is None else recovery_episodes,
             "failure_transitions": twin.data.failure_transitions}
    policy_name = "task_expert_without_wall_avoidance"  # build_twin_datasets' default failure policy (cache key)
    key = dataset_key(env, twin, seed, sizes, policy_name)
    folder = Path(data_dir) / f"{env.config.task}-{key}"
    params = {"seed": seed, "sizes": sizes, "failure_policy": policy_name, "generator_version": GENERATOR_VERSION,
              "cache_key": key, "twin_config": twin.as_dict()}
    jobs = {"task": lambda: generate_task_demos(env, twin, sizes["task_episodes"], seed, True),
            "recovery": lambda: generate_recovery_demos(env, twin, sizes["recovery_episodes"], seed, True)}
    out, info = {}, {"cache_folder": str(folder), "sizes": {k: sizes[k] for k in ("task_episodes",
                                                                                  "recovery_episodes")}}
    for name, job in jobs.items():
        path = folder / f"{name}.npz"
        dataset = None
        if path.is_file():
            try:
                dataset = load_dataset(path, expect_task=env.config.task)
                seconds = 0.0
            except FarlInputError as error:
                print(f"warning: regenerating unusable cache file: {error}", file=sys.stderr)
        if dataset is None:
            t0 = time.perf_counter()
            dataset = job()
            seconds = round(time.perf_counter() - t0, 2)
            dataset.meta.update(params, seconds=seconds)
            save_dataset(path, dataset)
        out[name] = Transitions.from_arrays(dataset)
        info[name] = {"seconds": seconds, "from_cache": seconds == 0.0, "stats": dataset.meta.get("stats", {})}
    env.close()
    return out, info


def _policy_digest(policy) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(policy.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def twin_failure_data(task: str, policy, data_dir: str | Path, seed: int, transitions: int,
                      lure_prob: float | None) -> tuple:
    """Noise injected into the pretrained policy's mean in the twin (the paper's recipe), cached by its weights."""
    import torch

    from ..agents.transitions import Transitions
    from ..data.format import load_dataset, save_dataset
    from ..twin.data import collect_failure_data

    env, twin = _twin_env(task)
    d = twin.data
    lure = d.failure_lure_prob if lure_prob is None else float(lure_prob)
    name = (f"failure-{_policy_digest(policy)}-n{transitions}-s{seed}-std{d.failure_noise_std}"
            f"-rho{d.failure_noise_correlation}-lure{lure}-T{d.failure_max_episode_steps}.npz")
    path = Path(data_dir) / f"{task}-policy-failure" / name
    t0 = time.perf_counter()
    if path.is_file():
        dataset = load_dataset(path, expect_task=task)
        seconds, cached = 0.0, True
    else:
        @torch.no_grad()
        def policy_mean(obs: np.ndarray) -> np.ndarray:
            return policy(torch.as_tensor(np.asarray(obs, dtype=np.float32))[None])[0].numpy()

        dataset = collect_failure_data(env, policy_mean, transitions, seed, d.failure_noise_std,
                                       d.failure_random_action_prob, d.failure_noise_correlation, True,
                                       "uni-o4 pretrained task policy (mean)", lure, twin,
                                       d.failure_max_episode_steps)
        seconds, cached = time.perf_counter() - t0, False
        save_dataset(path, dataset)
    env.close()
    stats = dict(dataset.meta.get("stats", {}))
    print(f"failure data: {stats.get('failure_episodes')} failure episodes of {stats.get('episodes')} "
          f"({int((np.asarray(dataset.cost) > 0).sum())} failure steps) from the pretrained policy, lure {lure}",
          file=sys.stderr)
    return Transitions.from_arrays(dataset), {"path": str(path), "seconds": seconds, "from_cache": cached,
                                              "transitions": transitions, "lure_prob": lure, "stats": stats}


# ---- export + shield check ---------------------------------------------------------
def export_folder(task: str, out: Path, cfg):
    """ONNX graphs + manifest.json from the checkpoints pretrain() wrote (the learner's exact starting point)."""
    from farl_common.task_config import load_task_config
    from farl_common.task_spec import TaskSpec

    from ..export.folder import export_model_folder
    from ..training.checkpoint import load_checkpoint
    from ..training.io import CALIBRATION, CHECKPOINTS, read_json

    spec = TaskSpec.from_config(load_task_config(task))
    policy, _ = load_checkpoint(out / CHECKPOINTS["task_policy"], "policy", expect={"obs_dim": spec.obs_dim})
    recovery, _ = load_checkpoint(out / CHECKPOINTS["recovery_policy"], "policy")
    world_model, _ = load_checkpoint(out / CHECKPOINTS["world_model"], "world_model")
    calibration = read_json(out / CALIBRATION)
    return export_model_folder(
        out, task, policy, recovery, world_model, cfg.risk.horizon, cfg.risk.gamma_risk,
        float(calibration["epsilon_safe"]), versions={"policy": 0, "recovery": 0, "risk": 0},
        obs_layout={name: [i, i + 1] for i, name in enumerate(spec.layout())},
        extra={"made_by": "farl pretrain-twin", "calibration": {k: calibration.get(k) for k in (
            "miss_rate", "needless_trigger_rate", "source")}})


def shield_check(task: str, out: Path, demos: dict, samples: int, seed: int) -> dict:
    """Load the folder the way the shield node does and time decide() on twin observations."""
    from farl_control.shield.runtime import ShieldRuntime
    from farl_common.task_config import load_task_config
    from farl_common.task_spec import TaskSpec

    spec = TaskSpec.from_config(load_task_config(task))
    shield = ShieldRuntime(out, task, spec.obs_dim, spec.action_dim, shield_enabled=True, seed=seed)
    rng = np.random.default_rng(seed)
    result = {"epsilon_safe": shield.epsilon}
    for name in ("task", "recovery"):
        obs = demos[name].obs
        idx = rng.choice(len(obs), size=min(samples, len(obs)), replace=False)
        latencies, triggers = [], 0
        for i in idx:
            decision = shield.decide(obs[i])
            latencies.append(decision.latency_ms)
            triggers += decision.source == "recovery"
        result[f"trigger_rate_on_{name}_demo_states"] = triggers / len(idx)
        result.setdefault("_latencies", []).extend(latencies)
    lat = np.asarray(result.pop("_latencies"))
    result["latency_ms"] = {"p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99)),
                            "mean": float(lat.mean()), "n": int(len(lat))}
    return result


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
