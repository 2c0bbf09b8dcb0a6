"""The FailureBench protocol runner's additions: per-task overrides, paired CIs, learning curves in the results."""
from __future__ import annotations

import json

import pytest

from farl_common.errors import FarlInputError
from farl_learner.commands.bench import METHODS, add_run, paired_ci, parse_task_overrides, write_outputs
from farl_learner.stats import learning_curve


def test_task_set_applies_to_its_task_only_and_rejects_unknown_tasks():
    got = parse_task_overrides(["bounded_push:bc.steps=200", "bounded_soccer:bc.steps=50",
                                "bounded_push:online.eval_episodes=10"], ["bounded_push", "bounded_soccer"])
    assert got == {"bounded_push": {"bc.steps": 200, "online.eval_episodes": 10}, "bounded_soccer": {"bc.steps": 50}}
    with pytest.raises(FarlInputError, match="--task-set"):
        parse_task_overrides(["obstructed_push:bc.steps=1"], ["bounded_push"])
    with pytest.raises(FarlInputError, match="--task-set"):
        parse_task_overrides(["bc.steps=1"], ["bounded_push"])


def _entry():
    return {"online_steps": 100, "seeds": [], "failure_episodes": [], "failure_steps": [], "episodes": [],
            "normalized_return_before": [], "normalized_return_after": [], "shield_trigger_rate": [],
            "shield_misses": [], "recovery_failures": [], "wall_seconds": [], "steps_per_second": []}


def _run(failures: int, after: float) -> dict:
    c = {"failure_episodes": failures, "failure_steps": failures, "episodes": 10, "steps": 100,
         "shield_triggers": 5, "shield_misses": 0, "recovery_failures": 0,
         "episode_end_steps": [10 * (k + 1) for k in range(10)], "episode_failed": [k < failures for k in range(10)],
         "episode_returns": [1.0] * 10}
    return {"counters": c, "before": {"normalized_return": 0.0}, "after": {"normalized_return": after},
            "online_seconds": 1.0, "steps_per_second": 100.0}


def test_results_keep_the_schema_and_add_paired_ci_and_curves(tmp_path):
    task = {m: _entry() for m in METHODS}
    curves = {m: [] for m in METHODS}
    for seed, (u, f) in enumerate([(8, 3), (9, 4), (7, 2), (8, 4), (9, 3)]):
        for m, failures in (("uni-o4", u), ("farl", f)):
            run = _run(failures, 50.0)
            add_run(task[m], run, seed)
            c = run["counters"]
            curves[m].append({"seed": seed, **learning_curve(c["episode_end_steps"], c["episode_failed"],
                                                             c["episode_returns"], c["steps"])})
    ci = paired_ci(task)
    assert ci["seeds"] == [0, 1, 2, 3, 4]
    assert ci["failure_episodes"]["excludes_zero"] and ci["failure_episodes"]["ci95"][1] < 0
    assert ci["normalized_return_after"]["mean_diff"] == 0.0
    results = {"complete": False, "command": "farl bench failurebench --steps 100", "steps": 100,
               "seeds": [0, 1, 2, 3, 4],
               "budget": {"online_steps": 100, "paper_online_steps": 1_000_000, "seeds": [0, 1, 2, 3, 4],
                          "pretrain_seed": 0, "profile": "smoke", "profile_overrides": {}, "extra_overrides": {},
                          "torch_threads": 1, "hardware": "test"},
               "pretraining": {}, "tasks": {"bounded_push": task}, "ci95": {"bounded_push": ci},
               "curves": {"bounded_push": curves}}
    write_outputs(results, tmp_path, plot=True, name="protocol")
    saved = json.loads((tmp_path / "protocol.json").read_text())
    assert saved["tasks"]["bounded_push"]["farl"]["failure_episodes"] == [3, 4, 2, 4, 3]
    assert saved["tasks"]["bounded_push"]["uni-o4"]["normalized_return_after"] == [50.0] * 5
    assert saved["ci95"]["bounded_push"]["failure_episodes"]["n"] == 5 and saved["steps"] == 100
    text = (tmp_path / "protocol.md").read_text()
    assert "Paired difference" in text and "| bounded_push | 5 |" in text and "Partial results" in text
    assert (tmp_path / "protocol_curves_bounded_push.png").is_file()


def test_with_the_baselines_every_method_is_reported_against_farl_and_the_papers_claims(tmp_path):
    from farl_learner.commands.bench import paired_vs_farl
    from farl_learner.training.methods import METHODS as ALL

    task = {m: _entry() for m in ALL}
    # per method: (failures, return after) over 3 seeds; the safe-RL methods fail less but barely learn
    table = {"uni-o4": [(8, 60.0)] * 3, "farl": [(3, 70.0), (4, 72.0), (3, 68.0)],
             "ppo-lag": [(2, 5.0), (1, 6.0), (2, 7.0)], "p3o": [(2, 8.0)] * 3, "cpo": [(1, 4.0)] * 3,
             "farl-qrisk": [(6, 50.0)] * 3, "farl-mppi": [(5, 40.0), (6, 45.0), (5, 41.0)]}
    for m, rows in table.items():
        for seed, (failures, after) in enumerate(rows):
            add_run(task[m], _run(failures, after), seed)
    results = {"complete": False, "command": "farl bench failurebench --methods ...", "steps": 100, "seeds": [0, 1, 2],
               "methods": list(ALL),
               "budget": {"online_steps": 100, "paper_online_steps": 1_000_000, "seeds": [0, 1, 2],
                          "pretrain_seed": 0, "profile": "smoke", "profile_overrides": {}, "extra_overrides": {},
                          "torch_threads": 1, "hardware": "test"},
               "pretraining": {}, "tasks": {"bounded_soccer": task}, "ci95": {"bounded_soccer": paired_ci(task)},
               "vs_farl": {"bounded_soccer": {m: paired_vs_farl(task, m) for m in ALL if m != "farl"}},
               "curves": {"bounded_soccer": {m: [] for m in ALL}}}
    write_outputs(results, tmp_path, plot=True, name="baselines")
    text = (tmp_path / "baselines.md").read_text()
    assert "## Safe-RL baselines and FARL's ablations" in text
    assert "| bounded_soccer | CPO | 3 | 1.0 [1.0, 1.0] |" in text  # one failure episode in every seed: no spread
    assert "| bounded_soccer | PPO-Lagrangian | 3 | 1.7 [1.0, 2.0] |" in text
    # FARL's return 70 against PPO-Lagrangian's 6: more than the paper's 8x
    assert "PPO-Lagrangian: paper, FARL's return > 8x the baseline's; ours, FARL 70.0 vs 6.0" in text
    assert "(11.7x): agrees" in text and "P3O" in text and "(8.8x): agrees" in text
    assert "FARL, MPPI recovery on Bounded Soccer: paper 80.16 vs FARL 122.98; ours 42.0 vs FARL 70.0: agrees" in text
    assert (tmp_path / "baselines_baselines.png").is_file()
    saved = json.loads((tmp_path / "baselines.json").read_text())
    assert saved["vs_farl"]["bounded_soccer"]["farl-qrisk"]["failure_episodes"]["mean_diff"] == pytest.approx(
        6 - 10 / 3)


def test_a_comparison_without_farl_or_uni_o4_is_refused_with_what_to_add():
    import argparse

    from farl_learner.commands import bench

    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(["failurebench", "--tasks", "bounded_push", "--methods", "ppo-lag", "farl"])
    with pytest.raises(FarlInputError, match="--methods.*uni-o4 and farl"):
        bench.run(args)


def test_the_learning_curves_show_every_method_the_grid_ran(tmp_path, monkeypatch):
    from farl_learner.commands import bench

    def curve(seed):
        return {"seed": seed, "steps": [10, 20], "cumulative_failures": [1, 2], "return_moving_avg": [None, 3.0],
                "window": 50}

    results = {"curves": {"bounded_soccer": {m: [curve(0), curve(1)] for m in ("uni-o4", "farl", "cpo")}}}
    drawn = {}
    monkeypatch.setattr(bench, "save_figure", lambda fig, res, path, dpi=100: drawn.update(
        legend=[t.get_text() for t in fig.axes[0].get_legend().get_texts()]))
    bench.render_curves(results, "bounded_soccer", tmp_path / "curves.png")
    assert drawn["legend"] == ["uni-o4 (2 seeds)", "farl (2 seeds)", "cpo (2 seeds)"]


def test_a_pretrained_folder_made_with_other_settings_is_refused_not_reused(tmp_path):
    from farl_learner.commands.bench import finished_pretraining
    from farl_learner.commands.common import load_config

    cfg, budget = load_config("bounded_push", "quick", {"bc.steps": 400, "failure_transitions": 20000})
    folder = tmp_path / "bounded_push" / "pretrained"
    folder.mkdir(parents=True)
    (folder / "calibration.json").write_text(json.dumps({"epsilon_safe": 1e-5}))
    (folder / "pretrain.json").write_text(json.dumps({"config": cfg.to_dict()}))
    (folder / "command.json").write_text(json.dumps({"budget": budget, "wall_seconds": 12.0}))
    assert finished_pretraining(folder, cfg, budget)[1] == 12.0

    online_only, online_budget = load_config("bounded_push", "quick", {  # settings pretraining does not read
        "bc.steps": 400, "failure_transitions": 20000, "online.eval_episodes": 10,
        "risk.max_needless_trigger_rate": 0.15, "ppo.trigger_penalty": 0.3})
    assert finished_pretraining(folder, online_only, online_budget) is not None
    for change in ({"bc.steps": 200, "failure_transitions": 20000}, {"bc.steps": 400, "failure_transitions": 5000}):
        other, other_budget = load_config("bounded_push", "quick", change)
        with pytest.raises(FarlInputError, match="pretrained with other settings.*another --work folder"):
            finished_pretraining(folder, other, other_budget)


def test_re_evaluation_replaces_each_runs_returns_and_the_paired_intervals_follow(tmp_path):
    """`--eval-episodes N`: the N-episode evaluation of every finished run replaces its own 10-episode one."""
    from farl_learner.commands.bench import reevaluate
    from farl_learner.grid import RunKey

    methods = list(METHODS)
    results = {"steps": 100, "tasks": {"bounded_push": {m: _entry() for m in methods}}, "ci95": {}, "vs_farl": {},
               "failed_runs": []}
    finished_runs = []
    for seed in range(3):
        for method, after in (("uni-o4", 50.0 + seed), ("farl", 40.0 + seed)):
            key = RunKey("bounded_push", method, seed, "h")
            folder = tmp_path / method / f"seed{seed}"
            folder.mkdir(parents=True)
            evaluation = {"after": {"normalized_return": after}}  # the first method of a seed has `before`
            (folder / "evaluation-100.json").write_text(json.dumps(
                {**evaluation, "before": {"normalized_return": 10.0}} if method == "uni-o4" else evaluation))
            finished_runs.append((key, {**_run(5, 99.0), "run_dir": str(folder)}))  # its own evaluation said 99
    reevaluate(results, finished_runs, tmp_path, 100, {"jobs": 1}, methods)
    entry = results["tasks"]["bounded_push"]
    assert entry["uni-o4"]["normalized_return_after"] == [50.0, 51.0, 52.0]
    assert entry["farl"]["normalized_return_before"] == [10.0] * 3 and entry["farl"]["failure_episodes"] == [5] * 3
    assert results["ci95"]["bounded_push"]["normalized_return_after"]["mean_diff"] == pytest.approx(-10.0)


def test_a_runs_policies_are_re_evaluated_on_the_task_and_cached(tmp_path):
    import torch

    from farl_learner.models import GaussianPolicy
    from farl_learner.training.checkpoint import save_checkpoint
    from farl_learner.training.finetune import evaluate_run

    from farl_learner.envs import make_env

    env = make_env("bounded_push", seed=0)
    obs_dim, action_dim = env.observation_space.shape[0], env.action_space.shape[0]
    torch.manual_seed(0)
    for folder in (tmp_path / "pretrained", tmp_path / "run"):
        save_checkpoint(folder / "task_policy.pt", "policy", GaussianPolicy(obs_dim, action_dim, hidden=(8,)),
                        {"task": "bounded_push"})
    out = evaluate_run("bounded_push", tmp_path / "pretrained", tmp_path / "run", seed=3, episodes=2)
    assert out["episodes"] == 2 and out["before"]["normalized_return"] is not None
    assert out["before"]["mean_return"] != out["after"]["mean_return"]  # two different policies
    cached = json.loads((tmp_path / "run" / "evaluation-2.json").read_text())
    assert cached["after"] == out["after"]
    assert evaluate_run("bounded_push", tmp_path / "pretrained", tmp_path / "run", seed=3, episodes=2) == cached
    import shutil

    shutil.copytree(tmp_path / "run", tmp_path / "same_policy", ignore=shutil.ignore_patterns("evaluation-*"))
    only_after = evaluate_run("bounded_push", tmp_path / "pretrained", tmp_path / "same_policy", seed=3, episodes=2,
                              before=False)  # another method of the same seed: the pretrained policy is not re-run
    assert "before" not in only_after and only_after["after"] == out["after"]  # same policy, same episode seeds


def test_a_pretrained_folder_made_before_the_task_file_s_data_section_changed_is_refused(tmp_path):
    """Demos and failure data come from config/failurebench/<task>.yaml, not from FarlConfig: more recovery
    demos there must not silently reuse a folder pretrained with the old count."""
    from farl_learner.commands.bench import finished_pretraining
    from farl_learner.commands.common import load_config
    from farl_learner.training.pretrain import data_generation_settings

    cfg, budget = load_config("obstructed_push", "quick", {"failure_transitions": 20000})
    made = data_generation_settings("obstructed_push")
    assert made is not None and made["recovery_demos"] > 0
    folder = tmp_path / "obstructed_push" / "pretrained"
    folder.mkdir(parents=True)
    (folder / "calibration.json").write_text(json.dumps({"epsilon_safe": 1e-5}))
    (folder / "command.json").write_text(json.dumps({"budget": budget, "wall_seconds": 12.0}))
    record = {"task": "obstructed_push", "config": cfg.to_dict(), "data_generation": made}
    (folder / "pretrain.json").write_text(json.dumps(record))
    assert finished_pretraining(folder, cfg, budget) is not None
    record["data_generation"] = {**made, "recovery_demos": 120 if made["recovery_demos"] != 120 else 480}
    (folder / "pretrain.json").write_text(json.dumps(record))
    with pytest.raises(FarlInputError, match=r"data\.recovery_demos: .* in the folder"):
        finished_pretraining(folder, cfg, budget)
