"""FailureBench online throughput on one core: raw Meta-World, Uni-O4 and FARL steps/s, side by side.

What an online fine-tuning step costs, with the networks at the sizes of
config/farl/<task>.yaml (policy and value 256x256, world model 256x256 with a
64-d latent, H = 10; untrained weights: a forward pass costs the same), all in
this process pinned to one core (os.sched_setaffinity), one torch thread:

1. raw: bare Meta-World (<base>-v3, goal observable) stepping uniform random
   actions, and the FailureBench env (the same plus the failure predicate);
2. Uni-O4: training/online.run_online without the shield, N envs, PPO updates
   included (ppo.num_steps transitions per update, the config's epochs);
3. FARL: the same loop with the shield (one batched H-step world-model rollout
   for the N states per step, pi_rec where triggered; eps_safe set so that
   about --trigger-rate of the proposals trigger, as in the committed run).

Each is measured --rounds times in rotation (raw, Uni-O4, FARL, raw, ...) and
the best round is reported, so a burst of load from other jobs on the shared
machine hits one round, not one method. Also N = 1 (the loop before batching)
for comparison. Targets: FARL >= 60 % of Uni-O4, Uni-O4 >= 50 % of raw Meta-World.

Prints a table and writes benchmarks/results/failurebench_throughput.{json,md} with the command.

    python benchmarks/failurebench_throughput.py [--task bounded_push] [--num-envs 16] [--steps 8192]
"""
from __future__ import annotations

import argparse
import json
import os
import time

from common import RESULTS, command_line, machine  # first: private ROS domain, loopback only

import numpy as np  # noqa: E402
import torch  # noqa: E402

TARGET_FARL_VS_UNI = 0.60
TARGET_UNI_VS_RAW = 0.50


def pin_one_core() -> int:
    core = sorted(os.sched_getaffinity(0))[-1]
    os.sched_setaffinity(0, {core})
    torch.set_num_threads(1)
    return core


def raw_rate(make, steps: int, seed: int) -> float:
    """Env steps/s of `make()` stepping uniform random actions (reset on episode end)."""
    env = make()
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1, 1, (steps, 4)).astype(np.float32)
    start = time.perf_counter()
    for k in range(steps):
        _, _, terminated, truncated, _ = env.step(actions[k])
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def bare_metaworld(base_env: str):
    import metaworld

    def make():
        env = metaworld.ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE[f"{base_env}-goal-observable"]()
        env.max_path_length = 200
        return env
    return make


def networks(cfg, obs_dim: int = 39, action_dim: int = 4):
    from farl_learner.models import GaussianPolicy, ValueNetwork, WorldModel

    torch.manual_seed(0)
    n = cfg.networks
    policy = GaussianPolicy(obs_dim, action_dim, n.policy_hidden, n.init_log_std)
    value = ValueNetwork(obs_dim, n.value_hidden)
    recovery = GaussianPolicy(obs_dim, action_dim, n.policy_hidden, n.init_log_std).requires_grad_(False)
    wm = WorldModel(obs_dim, action_dim, cfg.world_model.latent_dim, cfg.world_model.hidden).requires_grad_(False)
    return policy, value, recovery, wm.eval()


def epsilon_for(policy, wm, cfg, task: str, trigger_rate: float) -> float:
    """eps_safe at the (1 - trigger_rate) quantile of C_H on states the env visits under the policy."""
    from farl_learner.envs import make_env
    from farl_learner.risk import risk_of_states

    env = make_env(task, seed=123)
    obs, _ = env.reset(seed=123)
    states, actions = [], []
    for _ in range(400):
        with torch.no_grad():
            a = policy.act(torch.as_tensor(obs, dtype=torch.float32)[None])[0].numpy()
        states.append(obs)
        actions.append(np.clip(a, -1, 1))
        obs, _, te, tr, _ = env.step(a)
        if te or tr:
            obs, _ = env.reset()
    risk = risk_of_states(wm, policy, np.asarray(states), cfg.risk.horizon, cfg.risk.gamma_risk,
                          first_actions=np.asarray(actions))
    return float(np.quantile(risk, 1.0 - trigger_rate))


def online_rate(task: str, cfg, n_envs: int, steps: int, seed: int, shielded: bool, epsilon: float) -> dict:
    from farl_learner.envs import make_env
    from farl_learner.shield import Shield
    from farl_learner.training.online import run_online

    policy, value, recovery, wm = networks(cfg)
    envs = [make_env(task, seed=seed + 1000 * i) for i in range(n_envs)]
    shield = Shield(policy, recovery, wm, cfg.risk.horizon, cfg.risk.gamma_risk, epsilon) if shielded else None
    start = time.perf_counter()
    counters, updates = run_online(envs, policy, value, cfg.ppo, steps, seed, shield=shield, progress=False)
    seconds = time.perf_counter() - start
    return {"steps_per_s": counters.steps / seconds, "steps": counters.steps, "seconds": seconds,
            "updates": counters.updates, "trigger_rate": counters.shield_triggers / max(counters.steps, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="bounded_push")
    parser.add_argument("--num-envs", type=int, default=None, help="parallel envs (default: the config's)")
    parser.add_argument("--steps", type=int, default=8192, help="online steps per measurement (>= 2 PPO updates)")
    parser.add_argument("--raw-steps", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--single-env-steps", type=int, default=4096, help="steps of the N = 1 rows (0 = skip)")
    parser.add_argument("--trigger-rate", type=float, default=0.2)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()

    from farl_learner.config import load_farl_config
    from farl_learner.envs import make_env
    from farl_learner.envs.spec import load_task_spec

    core = pin_one_core()
    from farl_learner.agents.ppo import make_optimizer

    warm_policy, warm_value, _, _ = networks(load_farl_config(args.task))
    make_optimizer(warm_policy, warm_value, load_farl_config(args.task).ppo)  # torch's one-time optimizer imports
    cfg = load_farl_config(args.task)
    n_envs = args.num_envs or cfg.online.num_envs
    base = load_task_spec(args.task).base_env
    policy, _, _, wm = networks(cfg)
    epsilon = epsilon_for(policy, wm, cfg, args.task, args.trigger_rate)

    rounds: list[dict] = []
    for r in range(args.rounds):
        row = {
            "raw_metaworld": raw_rate(bare_metaworld(base), args.raw_steps, r),
            "raw_failurebench": raw_rate(lambda: make_env(args.task, seed=r), args.raw_steps, r),
            "uni_o4": online_rate(args.task, cfg, n_envs, args.steps, r, False, epsilon),
            "farl": online_rate(args.task, cfg, n_envs, args.steps, r, True, epsilon),
        }
        rounds.append(row)
        print(f"round {r}: raw Meta-World {row['raw_metaworld']:.0f}, FailureBench env {row['raw_failurebench']:.0f}, "
              f"Uni-O4 {row['uni_o4']['steps_per_s']:.0f}, FARL {row['farl']['steps_per_s']:.0f} steps/s "
              f"(trigger rate {row['farl']['trigger_rate']:.2f})", flush=True)
    single = None
    if args.single_env_steps:
        single = {"uni_o4": online_rate(args.task, cfg, 1, args.single_env_steps, 0, False, epsilon),
                  "farl": online_rate(args.task, cfg, 1, args.single_env_steps, 0, True, epsilon)}

    best = {
        "raw_metaworld": max(r["raw_metaworld"] for r in rounds),
        "raw_failurebench": max(r["raw_failurebench"] for r in rounds),
        "uni_o4": max(r["uni_o4"]["steps_per_s"] for r in rounds),
        "farl": max(r["farl"]["steps_per_s"] for r in rounds),
    }
    ratios = {"farl_vs_uni_o4": best["farl"] / best["uni_o4"], "uni_o4_vs_raw_metaworld": best["uni_o4"] / best["raw_metaworld"],
              "uni_o4_vs_raw_failurebench": best["uni_o4"] / best["raw_failurebench"]}
    met = {"farl_vs_uni_o4": ratios["farl_vs_uni_o4"] >= TARGET_FARL_VS_UNI,
           "uni_o4_vs_raw_metaworld": ratios["uni_o4_vs_raw_metaworld"] >= TARGET_UNI_VS_RAW}
    result = {"benchmark": "failurebench_throughput", "command": command_line(), "machine": machine(),
              "pinned_core": core, "task": args.task, "num_envs": n_envs, "online_steps": args.steps,
              "raw_steps": args.raw_steps, "horizon": cfg.risk.horizon, "ppo": cfg.ppo.__dict__,
              "epsilon_safe": epsilon, "rounds": rounds, "best": best, "ratios": ratios,
              "targets": {"farl_vs_uni_o4": TARGET_FARL_VS_UNI, "uni_o4_vs_raw_metaworld": TARGET_UNI_VS_RAW},
              "met": met, "single_env": single}
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "failurebench_throughput.json"), "w") as f:
        json.dump(result, f, indent=2)
    md = render(result)
    with open(os.path.join(out, "failurebench_throughput.md"), "w") as f:
        f.write(md)
    print(md)


def render(r: dict) -> str:
    b, q, t = r["best"], r["ratios"], r["targets"]
    ok = lambda m: "met" if m else "**missed**"  # noqa: E731
    lines = [
        "# FailureBench online throughput (one core)",
        "",
        f"Command: `{r['command']}`",
        "",
        f"Machine: {r['machine']['cpus']} shared CPUs, this process pinned to core {r['pinned_core']}, torch threads 1, "
        f"load average {r['machine']['load_avg_1min']} at the start; {r['machine']['date_utc']} UTC. "
        f"Task {r['task']}, N = {r['num_envs']} envs, {r['online_steps']:,} online steps per measurement "
        f"(PPO update every {r['ppo']['num_steps']} steps, {r['ppo']['update_epochs']} epochs x "
        f"{r['ppo']['num_minibatches']} minibatches, included), H = {r['horizon']}, FARL trigger rate "
        f"{r['rounds'][0]['farl']['trigger_rate']:.2f}. Best of {len(r['rounds'])} rotated rounds.",
        "",
        "| measurement | steps/s |",
        "|---|---|",
        f"| raw Meta-World ({'bare env, random actions'}) | {b['raw_metaworld']:.0f} |",
        f"| FailureBench env (Meta-World + failure predicate) | {b['raw_failurebench']:.0f} |",
        f"| Uni-O4 online (N = {r['num_envs']}) | {b['uni_o4']:.0f} |",
        f"| FARL online (N = {r['num_envs']}, batched shield) | {b['farl']:.0f} |",
    ]
    if r.get("single_env"):
        s = r["single_env"]
        lines += [f"| Uni-O4 online (N = 1, before batching) | {s['uni_o4']['steps_per_s']:.0f} |",
                  f"| FARL online (N = 1, batch-1 shield) | {s['farl']['steps_per_s']:.0f} |"]
    lines += [
        "",
        "| ratio | value | target | |",
        "|---|---|---|---|",
        f"| FARL / Uni-O4 | {100 * q['farl_vs_uni_o4']:.0f} % | >= {100 * t['farl_vs_uni_o4']:.0f} % | "
        f"{ok(r['met']['farl_vs_uni_o4'])} |",
        f"| Uni-O4 / raw Meta-World | {100 * q['uni_o4_vs_raw_metaworld']:.0f} % | >= "
        f"{100 * t['uni_o4_vs_raw_metaworld']:.0f} % | {ok(r['met']['uni_o4_vs_raw_metaworld'])} |",
        f"| Uni-O4 / FailureBench env | {100 * q['uni_o4_vs_raw_failurebench']:.0f} % | | |",
        "",
        "Per round (steps/s): " + "; ".join(
            f"raw {x['raw_metaworld']:.0f} / env {x['raw_failurebench']:.0f} / Uni-O4 {x['uni_o4']['steps_per_s']:.0f} "
            f"/ FARL {x['farl']['steps_per_s']:.0f}" for x in r["rounds"]) + ".",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
