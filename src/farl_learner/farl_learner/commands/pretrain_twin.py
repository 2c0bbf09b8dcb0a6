"""`farl pretrain-twin <task> --out DIR`: the stack's pretrained model folder, from the training twin.

Everything FARL learns offline for a real-robot task on the FR3 (any task with a
config/twin/<task>.yaml: Fragile Push Wall, Disturbed Push, Bounded Soccer), in the twin (farl_learner.twin: the served franky-sim scene stepped
in-process), then exported as the model folder the ROS 2 stack loads
(config/models/<task>/, the stack YAML's default `models_dir`):

    1. task demos: the medium expert (scripted expert + noise), cached under --data
    2. Uni-O4 task policy: BC ensemble + offline clipped improvement; the twin
       decides (agents/uni_o4.py `evaluate`): each member is scored by
       --eval-episodes deterministic rollouts after BC and after improvement, keeps
       its improvement only where the score did not drop, and the best goes online
    3. failure data: that policy exploring exactly as the stack's actor will
       (its own Gaussian, AR(1)-correlated draws with the task config's
       exploration.noise_correlation), --failure-transitions steps, every
       transition kept (twin.data.collect_exploration_data)
    4. recovery demos: the scripted recovery controller started from the states a
       few ticks before the failures of step 3 (topped up from the lured expert's
       near-failures when too few; pretrain.json says how many of each)
    5. recovery policy, 6. world model, 7. eps_safe calibration on held-out
       failure-data episodes, with its recall, needless-trigger rate, the whole
       trade-off curve and the warning lead time (training.pretrain)
    8. world-model refinement (--refine-rounds): the shielded system explores
       in the twin (--refine-transitions steps per round); its transitions -
       states reached after recoveries, which steps 3-7 never saw and on which
       the first model fired at half the ticks - join the world model's data, the
       model trains on (--refine-steps), eps_safe is recalibrated on held-out
       episodes of both sources
    9. export: policy.onnx, recovery.onnx, risk.onnx, manifest.json (obs layout =
       TaskSpec.layout()), next to the torch checkpoints + calibration.json the
       learner node starts from; the shield runtime loads the folder and times decide()
    10. twin preview of the stack benchmark: --preview-episodes episodes of the
       exploring policy with the shield off and on (same seeds), counted as the
       stack benchmark counts them

Writes pretrain.json (config, data statistics, timings, metrics, shield check,
preview), calibration.png (the recall / needless-trigger trade-off with eps_safe
marked) and command.json (the exact command). Datasets never go into the model folder.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from farl_common.errors import FarlInputError

from .common import add_budget_arguments, invoked_command, parse_overrides, profile_overrides

DEFAULT_CONFIG = "farl/franka/<task>.yaml"


def twin_tasks() -> tuple[str, ...]:
    """The real-robot tasks with a training twin: those with config/twin/<task>.yaml."""
    from farl_common.paths import config_dir

    return tuple(sorted(p.stem for p in (config_dir() / "twin").glob("*.yaml")))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", choices=twin_tasks(), help="real-robot task with a training twin")
    parser.add_argument("--out", required=True, help="model folder to write (the stack's default: "
                                                     "config/models/<task>)")
    parser.add_argument("--config", default=DEFAULT_CONFIG,
                        help=f"FARL hyper-parameters, relative to config/ or absolute [default: {DEFAULT_CONFIG}]")
    parser.add_argument("--data", default="data/twin", help="dataset cache folder (git-ignored) [default: data/twin]")
    parser.add_argument("--seed", type=int, default=None, help="seed (default: the config's)")
    parser.add_argument("--task-episodes", type=int, default=None, help="task demos (default: twin YAML, 20)")
    parser.add_argument("--recovery-episodes", type=int, default=None,
                        help="recovery demos (default: twin YAML, 120)")
    parser.add_argument("--failure-transitions", type=int, default=None,
                        help="failure data: steps of the pretrained policy's exploration "
                             "(default: twin YAML data.failure_transitions)")
    parser.add_argument("--min-failure-episodes", type=int, default=20,
                        help="fewer failure episodes in the failure data is an error (nothing to learn from) "
                             "[default: 20]")
    parser.add_argument("--eval-episodes", type=int, default=20,
                        help="deterministic twin episodes that score each ensemble member [default: 20]")
    parser.add_argument("--refine-rounds", type=int, default=1,
                        help="world-model refinement rounds on the shielded system's own exploration [default: 1]")
    parser.add_argument("--refine-transitions", type=int, default=10000,
                        help="shielded exploration steps per refinement round [default: 10000]")
    parser.add_argument("--refine-steps", type=int, default=1500,
                        help="world-model gradient steps per refinement round [default: 1500]")
    parser.add_argument("--operating-recalls", type=float, nargs="*", default=[0.9, 0.8, 0.7, 0.6, 0.5],
                        help="candidate eps_safe: the largest eps with this held-out recall, each tried in closed "
                             "loop in the twin (none = keep the calibrated eps) [default: 0.9 0.8 0.7 0.6 0.5]")
    parser.add_argument("--operating-episodes", type=int, default=60,
                        help="twin episodes per candidate (and for the shield-off reference) [default: 60]")
    parser.add_argument("--failure-cut", type=float, default=0.8,
                        help="a candidate must cut the twin's failure pairs by at least this fraction [default: 0.8]")
    parser.add_argument("--success-tolerance", type=float, default=0.05,
                        help="... and keep the success rate within this of the shield-off one [default: 0.05]")
    parser.add_argument("--preview-episodes", type=int, default=100,
                        help="twin episodes per arm (shield off / on) of the closing preview; 0 = skip [default: 100]")
    parser.add_argument("--latency-samples", type=int, default=500, help="shield decide() calls timed [default: 500]")
    parser.add_argument("--reselect-operating-point", action="store_true",
                        help="keep the networks an earlier run wrote to --out and redo only the operating point, "
                             "export, shield check and twin preview (after the twin itself changed, e.g. its "
                             "command delay)")
    add_budget_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from farl_common.paths import resolve_config_path

    from ..agents.transitions import Transitions
    from ..config import load_farl_config
    from ..training.io import write_json
    from ..twin.actors import PolicyActor, rollouts
    from ..twin.data import recovery_demos_from_states

    started = time.perf_counter()
    config_path = resolve_config_path(args.config.replace("<task>", args.task))
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
    env, twin = _twin_env(args.task)
    correlation = env.spec_.exploration_correlation
    if args.reselect_operating_point:
        return reselect_operating_point(args, env, cfg, correlation, started)
    failure_transitions = args.failure_transitions or twin.data.failure_transitions
    recovery_episodes = args.recovery_episodes or twin.data.recovery_episodes

    stages = tqdm(total=5, desc="pretrain-twin", unit="stage", dynamic_ncols=True)
    stages.set_postfix_str("task demos")
    t0 = time.perf_counter()
    demos, demo_info = twin_demos(args.task, args.data, cfg.seed, args.task_episodes)
    demo_seconds = time.perf_counter() - t0
    stages.update(1)

    def evaluate(policy) -> dict:
        stats = rollouts(env, PolicyActor(policy, explore=False), args.eval_episodes, seed=10_000 + cfg.seed).stats
        s = stats.summary()
        return {"score": s["success_rate"] + 1e-3 * s["mean_return"], "success_rate": s["success_rate"],
                "failure_rate": s["failure_rate"], "mean_return": s["mean_return"], "episodes": s["episodes"]}

    near_failures: list = []
    data_info: dict = {}

    def failure_source(policy):
        stages.set_postfix_str("failure data (the policy's own exploration)")
        t = time.perf_counter()
        dataset, near, path = exploration_data(env, twin, policy, args.data, failure_transitions, cfg.seed,
                                               correlation)
        near_failures.extend(near)
        data_info["failure"] = {"seconds": time.perf_counter() - t, "path": str(path),
                                "stats": dataset.meta.get("stats", {})}
        stats = data_info["failure"]["stats"]
        print(f"failure data: {stats['failure_episodes']} failure episodes of {stats['episodes']} "
              f"({stats['failure_rate']:.0%}) from the pretrained policy's exploration, "
              f"correlation {correlation}", file=sys.stderr)
        if stats["failure_episodes"] < args.min_failure_episodes:
            raise FarlInputError(None, f"the pretrained policy's exploration failed only {stats['failure_episodes']} "
                                       f"times in {failure_transitions} steps: too few to learn failures from; "
                                       "raise --failure-transitions")
        return Transitions.from_arrays(dataset)

    def recovery_source(policy):
        stages.set_postfix_str("recovery demos (from the policy's near-failures)")
        t = time.perf_counter()
        dataset, stats = recovery_demos_from_states(env, twin, near_failures, recovery_episodes, cfg.seed)
        data_info["recovery"] = {"seconds": time.perf_counter() - t, "stats": stats}
        return Transitions.from_arrays(dataset)

    stages.set_postfix_str("task policy (members scored in the twin)")
    from ..training.pretrain import pretrain

    try:
        metrics = pretrain(args.task, None, out, cfg, datasets={"task": demos}, progress=True,
                           failure_source=failure_source, evaluate_task_policy=evaluate,
                           recovery_source=recovery_source)
    except ValueError as error:
        if "failure-preceding" not in str(error):
            raise
        raise FarlInputError(None, f"{error}: the held-out failure data has no failure; "
                                   "raise --failure-transitions") from None
    stages.update(1)

    stages.set_postfix_str("world-model refinement (the shielded system's exploration)")
    t0 = time.perf_counter()
    refinement = refine_world_model(env, out, cfg, correlation, demos, Path(data_info["failure"]["path"]),
                                    args.refine_rounds, args.refine_transitions, args.refine_steps)
    if refinement:
        metrics["calibration_before_refinement"] = metrics["calibration"]
        metrics["calibration"] = refinement[-1]["calibration"]
    refine_seconds = time.perf_counter() - t0

    stages.set_postfix_str("operating point (eps_safe in closed loop)")
    t0 = time.perf_counter()
    operating = choose_operating_point(env, out, cfg, correlation, metrics["calibration"], args,
                                       Path(data_info["failure"]["path"]))
    if operating:
        metrics["calibration_at_target_recall"] = metrics["calibration"]
        metrics["calibration"] = read_calibration(out)
    operating_seconds = time.perf_counter() - t0

    stages.set_postfix_str("export")
    t0 = time.perf_counter()
    manifest, parity = export_folder(args.task, out, cfg)
    export_seconds = time.perf_counter() - t0
    stages.update(1)

    stages.set_postfix_str("shield check")
    shield = shield_check(args.task, out, {"task": demos}, args.latency_samples, cfg.seed)
    stages.update(1)

    stages.set_postfix_str("twin preview (shield off / on)")
    t0 = time.perf_counter()
    preview = twin_preview(env, out, cfg, correlation, args.preview_episodes) if args.preview_episodes else {}
    preview_seconds = time.perf_counter() - t0
    stages.update(1)
    stages.close()

    plot_calibration(out / "calibration.png", metrics["calibration"], args.task)
    wall = time.perf_counter() - started
    metrics["timings"] = {"twin_demos_s": demo_seconds, **metrics["timings"], "export_s": export_seconds,
                          "refinement_s": refine_seconds,
                          "operating_point_s": operating_seconds, "twin_preview_s": preview_seconds, "total_s": wall}
    metrics["twin_data"] = {**demo_info, **data_info, "exploration_correlation": correlation}
    metrics["twin_stepping"] = twin_stepping(env)
    metrics["export"] = {"parity_max_abs_diff": parity, "files": sorted(manifest.models)}
    metrics["shield_check"] = shield
    metrics["twin_preview"] = preview
    metrics["operating_point"] = operating
    metrics["world_model_refinement"] = [{k: v for k, v in r.items() if k != "calibration"} for r in refinement]
    metrics["folder_bytes"] = folder_bytes(out)
    write_json(out / "pretrain.json", metrics)
    write_json(out / "command.json", {
        "command": invoked_command("pretrain-twin", f"farl pretrain-twin {args.task} --out {args.out}"),
        "task": args.task, "config": str(args.config), "data": str(args.data),
        "budget": {"profile": args.profile, "overrides": overrides, "failure_transitions": failure_transitions,
                   "eval_episodes": args.eval_episodes, "preview_episodes": args.preview_episodes},
        "wall_seconds": wall})
    print(summary_line(out, args.task, wall, metrics))
    return 0


def summary_line(out: Path, task: str, wall: float, metrics: dict) -> str:
    cal, shield, chosen = metrics["calibration"], metrics["shield_check"], metrics["task_policy"].get("chosen_eval", {})
    line = (f"{out}: pretrained {task} in {wall:.0f} s; task policy: {chosen.get('success_rate', float('nan')):.0%} "
            f"success deterministic; eps_safe {cal['epsilon_safe']:.4g} (held-out recall {cal['recall']:.2f}, "
            f"needless triggers {cal['needless_trigger_rate']:.3f}, median warning "
            f"{cal['warning_lead_ticks']['median']:.0f} ticks ahead); shield decide() p50 "
            f"{shield['latency_ms']['p50']:.2f} ms")
    preview = metrics.get("twin_preview")
    if preview:
        off, on = preview["shield_off"], preview["shield_on"]
        line += (f"; twin preview: failure pairs {off['failure_pairs']} -> {on['failure_pairs']} "
                 f"({preview['failure_pair_change']:+.0%}), success {off['success_rate']:.0%} -> {on['success_rate']:.0%}")
    return line


# ---- data ----------------------------------------------------------------------
def _twin_env(task: str):
    from ..twin import load_twin_config, make_twin_env

    twin = load_twin_config(task)
    return make_twin_env(task, twin), twin


def twin_demos(task: str, data_dir: str | Path, seed: int, task_episodes: int | None) -> tuple:
    """Task demos (medium expert) as Transitions, cached by a hash of every setting that makes them."""
    from ..agents.transitions import Transitions
    from ..data.format import load_dataset, save_dataset
    from ..twin.data import GENERATOR_VERSION, dataset_key, generate_task_demos

    env, twin = _twin_env(task)
    sizes = {"task_episodes": twin.data.task_episodes if task_episodes is None else task_episodes}
    key = dataset_key(env, twin, seed, sizes, "none")
    path = Path(data_dir) / f"{env.config.task}-{key}" / "task.npz"
    params = {"seed": seed, "sizes": sizes, "generator_version": GENERATOR_VERSION, "cache_key": key,
              "twin_config": twin.as_dict()}
    dataset, seconds = None, 0.0
    if path.is_file():
        try:
            dataset = load_dataset(path, expect_task=env.config.task)
        except FarlInputError as error:
            print(f"warning: regenerating unusable cache file: {error}", file=sys.stderr)
    if dataset is None:
        t0 = time.perf_counter()
        dataset = generate_task_demos(env, twin, sizes["task_episodes"], seed, True)
        seconds = round(time.perf_counter() - t0, 2)
        dataset.meta.update(params, seconds=seconds)
        save_dataset(path, dataset)
    env.close()
    info = {"task": {"path": str(path), "seconds": seconds, "from_cache": seconds == 0.0,
                     "stats": dataset.meta.get("stats", {})}}
    return Transitions.from_arrays(dataset), info


def _policy_digest(policy) -> str:
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(policy.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def exploration_data(env, twin, policy, data_dir, transitions: int, seed: int, correlation: float):
    """`twin.data.collect_exploration_data`, cached by the policy's weights and every setting that matters.

    The near-failure twin states (to start recovery demos from) are cached beside the dataset.
    Returns (dataset, near-failure states, path).
    """
    import hashlib
    import json

    from ..data.format import load_dataset, save_dataset
    from ..twin.data import GENERATOR_VERSION, collect_exploration_data
    from ..twin.env import TwinState

    key = hashlib.sha256(json.dumps({"policy": _policy_digest(policy), "n": transitions, "seed": seed,
                                     "rho": correlation, "task": env.config.raw, "twin": twin.as_dict(),
                                     "version": GENERATOR_VERSION}, sort_keys=True, default=str).encode())
    folder = Path(data_dir) / f"{env.config.task}-policy-exploration"
    path = folder / f"failure-{key.hexdigest()[:16]}.npz"
    states_path = path.with_name(path.stem + "-near-failure-states.npz")
    if path.is_file() and states_path.is_file():
        try:
            dataset = load_dataset(path, expect_task=env.config.task)
            with np.load(states_path) as z:
                near = [(TwinState(z["mj_state"][i], z["qfrc_applied"][i], int(z["steps"][i]), z["tcp"][i],
                                   z["previous_twist"][i]), z["obs"][i]) for i in range(len(z["obs"]))]
            print(f"failure data: reusing {path}", file=sys.stderr)
            return dataset, near, path
        except (FarlInputError, KeyError, ValueError) as error:
            print(f"warning: regenerating unusable cache file: {error}", file=sys.stderr)
    dataset, near = collect_exploration_data(env, policy, transitions, seed, correlation)
    save_dataset(path, dataset)
    if near:
        np.savez(states_path, mj_state=np.stack([s.mj_state for s, _ in near]),
                 qfrc_applied=np.stack([s.qfrc_applied for s, _ in near]),
                 steps=np.array([s.steps for s, _ in near]), tcp=np.stack([s.tcp for s, _ in near]),
                 previous_twist=np.stack([s.previous_twist for s, _ in near]), obs=np.stack([o for _, o in near]))
    else:
        np.savez(states_path, obs=np.zeros((0, env.spec_.obs_dim)))
    return dataset, near, path


def refine_world_model(env, out: Path, cfg, correlation: float, demos, failure_path: Path, rounds: int,
                       transitions: int, steps: int, leak: float = 0.5) -> list[dict]:
    """Rounds of: the shielded system explores, the world model trains on it too, eps_safe is recalibrated.

    The shield swaps in pi_rec, which takes the arm where the task policy's own
    exploration never goes; the first world model has never seen those states
    and, there, calls risk where there is none. Its data therefore gain the
    shielded system's transitions (labelled by the twin like the rest; the
    shield lets the task action through at `leak` of its triggers, or the model
    would never see what the task action does there - measured: half the
    shield-on ticks were spent backing off from a block 4 cm ahead), and
    eps_safe is recalibrated on held-out episodes of the failure data and of
    every round. Rewrites world_model.pt and calibration.json; returns one
    record per round (what the shielded system did, the new calibration).
    """
    from ..agents.transitions import Transitions
    from ..agents.world_model_agent import train_world_model
    from ..data.format import KIND_FAILURE, load_dataset
    from ..shield import Shield
    from ..training.checkpoint import load_checkpoint, save_checkpoint
    from ..training.io import CALIBRATION, CHECKPOINTS, read_json, write_json
    from ..training.pretrain import calibrate
    from ..twin.actors import PolicyActor, ShieldedActor, rollouts
    from ..twin.data import _dataset

    if rounds <= 0:
        return []
    policy, _ = load_checkpoint(out / CHECKPOINTS["task_policy"], "policy")
    recovery, _ = load_checkpoint(out / CHECKPOINTS["recovery_policy"], "policy")
    world_model, _ = load_checkpoint(out / CHECKPOINTS["world_model"], "world_model")
    eps = float(read_json(out / CALIBRATION)["epsilon_safe"])
    failure = Transitions.from_arrays(load_dataset(failure_path, expect_task=env.config.task))
    train_parts, holdout_parts = [demos], []
    failure_train, failure_holdout = failure.split_episodes(cfg.risk.holdout_fraction, cfg.seed)
    train_parts.append(failure_train)
    holdout_parts.append(failure_holdout)
    records = []
    for r in range(rounds):
        shield = Shield(policy, recovery, world_model, cfg.risk.horizon, cfg.risk.gamma_risk, eps)
        actor = ShieldedActor(PolicyActor(policy, True, correlation, seed=40_000 + r), shield, leak=leak,
                              seed=40_000 + r, hold=cfg.risk.recovery_hold_ticks)
        result = rollouts(env, actor, 10 * transitions, seed=40_000 + 1000 * r, record=True,
                          max_transitions=transitions)
        shielded = Transitions.from_arrays(_dataset(env, result.episodes, KIND_FAILURE,
                                                    {"generator": "twin.shielded_exploration"}))
        s_train, s_holdout = shielded.split_episodes(cfg.risk.holdout_fraction, cfg.seed + 1 + r)
        train_parts.append(s_train)
        holdout_parts.append(s_holdout)
        world_model, curve = train_world_model(Transitions.concat(train_parts), cfg.world_model, cfg.seed + 1 + r,
                                               progress=True, init=world_model, steps=steps)
        calibration = calibrate(world_model, policy, Transitions.concat(holdout_parts), cfg)
        eps = float(calibration["epsilon_safe"])
        stats = result.stats.summary()
        records.append({"round": r + 1, "shielded_exploration": stats, "transitions": len(shielded),
                        "world_model_final": curve[-1], "calibration": calibration})
        print(f"world-model refinement {r + 1}/{rounds}: the shielded system fired on {stats['trigger_rate']:.0%} of "
              f"its ticks ({stats['failure_episodes']} failures, {stats['success_rate']:.0%} success in "
              f"{stats['episodes']} episodes); recalibrated eps_safe {eps:.4g} (recall {calibration['recall']:.2f}, "
              f"needless triggers {calibration['needless_trigger_rate']:.3f})", file=sys.stderr)
    save_checkpoint(out / CHECKPOINTS["world_model"], "world_model", world_model,
                    {"task": env.config.task, "seed": cfg.seed, "version": 1, "refinement_rounds": rounds})
    write_json(out / CALIBRATION, {"task": env.config.task, **records[-1]["calibration"]})
    return records


def reselect_operating_point(args: argparse.Namespace, env, cfg, correlation: float, started: float) -> int:
    """`--reselect-operating-point`: steps 7-8 of the recipe again on an already trained folder.

    The networks were trained in the twin as it was; when the twin changes in a way that
    does not change what they learned from much but changes the closed loop (the command
    delay), only the operating point needs choosing again. pretrain.json keeps the
    calibration before any operating point and the earlier choice, so this is repeatable.
    """
    from ..training.io import CALIBRATION, read_json, write_json

    out = Path(args.out)
    try:
        metrics = read_json(out / "pretrain.json")
        calibration = metrics.get("calibration_at_target_recall") or metrics["calibration"]
        failure_path = Path(metrics["twin_data"]["failure"]["path"])
        trained_by = read_json(out / "command.json")
    except (FileNotFoundError, KeyError) as error:
        raise FarlInputError(out / "pretrain.json", f"no earlier farl pretrain-twin run to reselect from ({error}); "
                                                    "run without --reselect-operating-point first") from None
    if not failure_path.is_file():
        raise FarlInputError(failure_path, "the failure data this folder was trained on is not in the data cache; "
                                           "rerun farl pretrain-twin without --reselect-operating-point")
    write_json(out / CALIBRATION, calibration)  # start from the calibrated (held-out recall target) eps
    demos, _ = twin_demos(args.task, args.data, cfg.seed, args.task_episodes)
    t0 = time.perf_counter()
    operating = choose_operating_point(env, out, cfg, correlation, calibration, args, failure_path)
    operating_seconds = time.perf_counter() - t0
    metrics["calibration_at_target_recall"] = calibration
    metrics["calibration"] = read_calibration(out)
    manifest, parity = export_folder(args.task, out, cfg)
    metrics["shield_check"] = shield_check(args.task, out, {"task": demos}, args.latency_samples, cfg.seed)
    t0 = time.perf_counter()
    metrics["twin_preview"] = twin_preview(env, out, cfg, correlation, args.preview_episodes) \
        if args.preview_episodes else {}
    preview_seconds = time.perf_counter() - t0
    plot_calibration(out / "calibration.png", metrics["calibration"], args.task)
    wall = time.perf_counter() - started
    # Folders trained before the twin had a command delay carry no twin_stepping: their delay was 0.
    trained_stepping = metrics.get("twin_stepping_at_training") or metrics.get("twin_stepping") or \
        {"command_delay_s": 0.0}
    metrics.setdefault("earlier_operating_points", []).append(metrics.get("operating_point"))
    metrics["operating_point"] = operating
    metrics["export"] = {"parity_max_abs_diff": parity, "files": sorted(manifest.models)}
    metrics["timings"] = {**metrics.get("timings", {}), "operating_point_s": operating_seconds,
                          "twin_preview_s": preview_seconds, "reselect_total_s": wall}
    metrics["twin_stepping_at_training"] = trained_stepping
    metrics["twin_stepping"] = twin_stepping(env)
    write_json(out / "pretrain.json", metrics)
    command = invoked_command("pretrain-twin",
                              f"farl pretrain-twin {args.task} --out {args.out} --reselect-operating-point")
    record = {k: v for k, v in trained_by.items() if k != "operating_point"}
    record["operating_point"] = {"command": command, "twin_stepping": twin_stepping(env), "wall_seconds": wall,
                                 "networks_trained_with_twin_stepping": trained_stepping}
    write_json(out / "command.json", record)
    print(summary_line(out, args.task, wall, metrics))
    return 0


def twin_stepping(env) -> dict:
    """How the twin stepped (recorded: the closed-loop results depend on it)."""
    return {"controller": env.controller, "physics_dt": env.physics_dt,
            "command_delay_s": round(env.delay_steps * env.physics_dt, 6)}


def read_calibration(out: Path) -> dict:
    from ..training.io import CALIBRATION, read_json

    return read_json(out / CALIBRATION)


def choose_operating_point(env, out: Path, cfg, correlation: float, calibration: dict, args,
                           failure_path: Path) -> dict:
    """eps_safe chosen in closed loop: the most permissive candidate that still cuts failures.

    The calibrated eps (held-out recall `target`) sits where the world model's
    scores are tiny - the constraint head is class-weighted, most states score
    near zero, and the hardest failure-preceding states too - so small
    differences between the twin and the served stack move many states across
    it (measured: the served arm at rest scored 7e-4..3e-3 against eps 6e-4,
    and the shield fired on every tick). Per-state recall also understates a
    shield in closed loop: a failure builds up over several ticks and one
    warning among them is enough to back off. So each candidate eps (the
    largest with held-out recall >= r, for each r of --operating-recalls) is
    run in the twin, on the same seeds as the shield-off reference, and the
    largest that cuts failure pairs by --failure-cut while keeping the success
    rate within --success-tolerance of shield-off is kept (else the best
    success among those that cut enough; else the calibrated eps). Rewrites
    calibration.json with it and its held-out recall, needless rate and lead.
    """
    from ..agents.transitions import Transitions, steps_to_failure
    from ..data.format import load_dataset
    from ..risk import evaluate_epsilon, risk_of_states, warning_lead_times
    from ..shield import Shield
    from ..training.checkpoint import load_checkpoint
    from ..training.io import CALIBRATION, CHECKPOINTS, write_json
    from ..twin.actors import PolicyActor, ShieldedActor, rollouts

    if not args.operating_recalls or args.operating_episodes <= 0:
        return {}
    curve = calibration["tradeoff"]
    eps_all, recall_all = np.asarray(curve["epsilon"]), np.asarray(curve["recall"])
    candidates = []
    for r in sorted(set(args.operating_recalls), reverse=True):
        ok = recall_all >= r
        if ok.any():
            candidates.append((r, float(eps_all[ok].max())))
    policy, _ = load_checkpoint(out / CHECKPOINTS["task_policy"], "policy")
    recovery, _ = load_checkpoint(out / CHECKPOINTS["recovery_policy"], "policy")
    world_model, _ = load_checkpoint(out / CHECKPOINTS["world_model"], "world_model")
    seed, n = 30_000 + cfg.seed, args.operating_episodes
    off = rollouts(env, PolicyActor(policy, True, correlation, seed), n, seed).stats.summary()
    tried = []
    for recall, eps in candidates:
        shield = Shield(policy, recovery, world_model, cfg.risk.horizon, cfg.risk.gamma_risk, eps)
        on = rollouts(env, ShieldedActor(PolicyActor(policy, True, correlation, seed), shield,
                                         hold=cfg.risk.recovery_hold_ticks), n, seed).stats
        s = on.summary()
        cut = 1.0 - s["failure_pairs"] / off["failure_pairs"] if off["failure_pairs"] else float("nan")
        tried.append({"target_recall": recall, "epsilon": eps, "failure_pairs": s["failure_pairs"],
                      "failure_cut": cut, "success_rate": s["success_rate"], "trigger_rate": s["trigger_rate"],
                      "mean_return": s["mean_return"]})
        print(f"operating point: eps {eps:.4g} (held-out recall {recall:.2f}): failure pairs {off['failure_pairs']} -> "
              f"{s['failure_pairs']}, success {off['success_rate']:.0%} -> {s['success_rate']:.0%}, "
              f"triggers {s['trigger_rate']:.1%} of ticks", file=sys.stderr)
    cutting = [t for t in tried if t["failure_cut"] >= args.failure_cut]
    keeping = [t for t in cutting if t["success_rate"] >= off["success_rate"] - args.success_tolerance]
    if keeping:
        chosen, reason = max(keeping, key=lambda t: t["epsilon"]), "largest eps that cuts failures and keeps success"
    elif cutting:
        chosen, reason = max(cutting, key=lambda t: t["success_rate"]), "best success among those that cut failures"
    else:
        return {"shield_off": off, "candidates": tried, "chosen": None,
                "reason": "no candidate cut failures enough: the calibrated eps is kept"}
    # The chosen eps's held-out figures, on the same held-out data the calibration used.
    failure = Transitions.from_arrays(load_dataset(failure_path, expect_task=env.config.task))
    record = dict(read_calibration(out))
    if len(failure):
        _, holdout = failure.split_episodes(cfg.risk.holdout_fraction, cfg.seed)
        risk = risk_of_states(world_model, policy, holdout.obs, cfg.risk.horizon, cfg.risk.gamma_risk,
                              first_actions=np.clip(holdout.action, -1.0, 1.0))
        to_failure = steps_to_failure(holdout)
        point = evaluate_epsilon(risk, to_failure, cfg.risk.horizon, chosen["epsilon"], cfg.risk.target_miss_rate)
        leads = warning_lead_times(risk, to_failure, holdout.episode_id, chosen["epsilon"])
        warned = leads[leads >= 0]
        record.update(point.to_dict(), recall=1.0 - point.miss_rate,
                      warning_lead_ticks={"median": float(np.median(warned)) if len(warned) else float("nan"),
                                          "p25": float(np.percentile(warned, 25)) if len(warned) else float("nan"),
                                          "failure_episodes": int(len(leads)), "never_warned": int(np.sum(leads < 0))},
                      holdout="failure data (the pretrained policy's exploration), held-out episodes")
    record.update(epsilon_safe=chosen["epsilon"], source="closed loop in the twin", limited_by=reason)
    write_json(out / CALIBRATION, record)
    return {"shield_off": off, "candidates": tried, "chosen": chosen, "reason": reason,
            "failure_cut_required": args.failure_cut, "success_tolerance": args.success_tolerance,
            "episodes": n, "seed": seed}


def twin_preview(env, out: Path, cfg, correlation: float, episodes: int) -> dict:
    """The stack benchmark in miniature, in the twin: the exploring policy with the shield off, then on."""
    from ..shield import Shield
    from ..training.checkpoint import load_checkpoint
    from ..training.io import CALIBRATION, CHECKPOINTS, read_json
    from ..twin.actors import PolicyActor, ShieldedActor, rollouts

    policy, _ = load_checkpoint(out / CHECKPOINTS["task_policy"], "policy")
    recovery, _ = load_checkpoint(out / CHECKPOINTS["recovery_policy"], "policy")
    world_model, _ = load_checkpoint(out / CHECKPOINTS["world_model"], "world_model")
    eps = float(read_json(out / CALIBRATION)["epsilon_safe"])
    shield = Shield(policy, recovery, world_model, cfg.risk.horizon, cfg.risk.gamma_risk, eps)
    seed = 20_000 + cfg.seed
    off = rollouts(env, PolicyActor(policy, True, correlation, seed), episodes, seed).stats
    on = rollouts(env, ShieldedActor(PolicyActor(policy, True, correlation, seed), shield,
                                     hold=cfg.risk.recovery_hold_ticks), episodes, seed).stats
    change = (on.failure_pairs - off.failure_pairs) / off.failure_pairs if off.failure_pairs else float("nan")
    lead = np.asarray(on.first_trigger_lead)
    return {"episodes": episodes, "seed": seed, "exploration_correlation": correlation,
            "shield_off": off.summary(), "shield_on": on.summary(),
            "failure_pair_change": change,
            "shield_on_first_trigger_lead_median": float(np.median(lead)) if len(lead) else float("nan")}


def plot_calibration(path: Path, calibration: dict, task: str) -> None:
    """Recall of failure-preceding states against needless triggers, eps_safe marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = calibration["tradeoff"]
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(curve["needless_trigger_rate"], curve["recall"], lw=1.5)
    ax.scatter([calibration["needless_trigger_rate"]], [calibration["recall"]], color="red", zorder=3,
               label=f"eps_safe {calibration['epsilon_safe']:.3g}")
    ax.axhline(0.9, color="grey", ls=":", lw=1)
    ax.axvline(0.15, color="grey", ls=":", lw=1)
    ax.set_xlabel("needless-trigger rate (safe held-out states)")
    ax.set_ylabel(f"recall (states <= H={calibration['horizon']} ticks before a failure)")
    ax.set_title(f"{task}: world-model shield on held-out data")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---- export + shield check ---------------------------------------------------------
def export_folder(task: str, out: Path, cfg, made_by: str = "farl pretrain-twin"):
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
        recovery_hold_ticks=cfg.risk.recovery_hold_ticks,
        obs_layout={name: [i, i + 1] for i, name in enumerate(spec.layout())},
        extra={"made_by": made_by, "calibration": {k: calibration.get(k) for k in (
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
    for name in demos:
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
