"""Smoke tests of the `farl` learning subcommands: help, input errors, and a tiny end-to-end run.

The end-to-end run (pretrain -> finetune -> evaluate -> export) uses the 1-D toy
task (training/toy.py) so it takes seconds; the FailureBench path is covered by
`farl bench failurebench` itself (benchmarks/results/failurebench_protocol.*) and a
markdown/JSON rendering check here.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from farl_learner.cli import SUBCOMMANDS, build_parser, main

LEARNING = ("demos", "pretrain", "finetune", "evaluate", "export", "bench")


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    return exit_info.value.code or 0, captured.out, captured.err


def test_learning_subcommands_are_registered():
    assert set(LEARNING) <= set(SUBCOMMANDS)
    build_parser()  # imports every subcommand module (no torch at import time)


@pytest.mark.parametrize("command", LEARNING)
def test_help_of_every_subcommand(command, capsys):
    code, out, _ = run_cli([command, "--help"], capsys)
    assert code == 0 and f"usage: farl {command}" in out


@pytest.mark.parametrize("argv", [
    ["pretrain", "no_such_task", "--out", "unused"],
    ["finetune", "no_such_task", "--model", "unused", "--out", "unused"],
    ["evaluate", "no_such_task", "--model", "unused"],
    ["export", "no_such_task", "--model", "unused", "--out", "unused"],
    ["demos", "no_such_task", "--out", "unused"],
    ["bench", "failurebench", "--tasks", "no_such_task"],
])
def test_unknown_task_is_one_error_line_and_exit_2(argv, capsys, tmp_path):
    code, _, err = run_cli(argv, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith(f"farl {argv[0]}: error:") and "no_such_task" in lines[0]


def test_missing_model_folder_is_one_error_line(capsys, tmp_path):
    code, _, err = run_cli(["finetune", "toy", "--model", str(tmp_path / "nope"), "--out", str(tmp_path / "o")],
                           capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "folder not found" in err


def test_bad_override_is_one_error_line(capsys, tmp_path):
    code, _, err = run_cli(["pretrain", "toy", "--out", str(tmp_path), "--set", "ppo.no_such_key=1"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "ppo.no_such_key" in err


def test_unknown_task_through_the_installed_entry_point(tmp_path):
    result = subprocess.run([sys.executable, "-m", "farl_learner.cli", "evaluate", "nope", "--model", str(tmp_path)],
                            capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("farl evaluate: error:")


def test_toy_pretrain_finetune_evaluate_export(capsys, tmp_path):
    pre, ft, onnx = tmp_path / "pre", tmp_path / "ft", tmp_path / "onnx"
    assert run_cli(["pretrain", "toy", "--out", str(pre), "--profile", "smoke"], capsys)[0] == 0
    for name in ("task_policy.pt", "recovery_policy.pt", "world_model.pt", "calibration.json", "pretrain.json",
                 "command.json"):
        assert (pre / name).is_file(), name
    assert json.loads((pre / "command.json").read_text())["budget"]["profile"] == "smoke"

    code, out, _ = run_cli(["finetune", "toy", "--model", str(pre), "--method", "farl", "--steps", "200",
                            "--seed", "1", "--out", str(ft), "--profile", "smoke"], capsys)
    assert code == 0 and "farl 200 steps" in out
    metrics = json.loads((ft / "finetune.json").read_text())
    assert metrics["steps"] == 200 and metrics["seed"] == 1 and metrics["counters"]["steps"] == 200
    assert json.loads((ft / "command.json").read_text())["method"] == "farl"

    code, out, _ = run_cli(["finetune", "toy", "--model", str(pre), "--method", "uni-o4", "--steps", "100",
                            "--out", str(tmp_path / "ft_u"), "--profile", "smoke"], capsys)
    assert code == 0 and json.loads((tmp_path / "ft_u" / "finetune.json").read_text())["counters"][
        "shield_triggers"] == 0

    code, out, _ = run_cli(["evaluate", "toy", "--model", str(ft), "--episodes", "3"], capsys)
    assert code == 0 and "failure rate" in out and (ft / "evaluate.json").is_file()

    code, out, _ = run_cli(["export", "toy", "--model", str(pre), "--policy", str(ft), "--out", str(onnx),
                            "--profile", "smoke"], capsys)
    assert code == 0 and "parity OK" in out and out.count("parity ") >= 4
    for name in ("policy.onnx", "recovery.onnx", "risk.onnx", "manifest.json", "export.json"):
        assert (onnx / name).is_file(), name


def test_bench_report_renders_partial_results(tmp_path):
    from farl_learner.commands.bench import METHODS, add_run, render_markdown, write_outputs

    results = {"complete": False, "command": "farl bench failurebench --steps 10",
               "budget": {"online_steps": 10, "paper_online_steps": 1_000_000, "seeds": [0], "pretrain_seed": 0,
                          "profile": "smoke", "profile_overrides": {}, "extra_overrides": {}, "torch_threads": 1,
                          "hardware": "test"},
               "pretraining": {"bounded_push": {"wall_seconds": 1.0, "epsilon_safe": 0.5}},
               "tasks": {"bounded_push": {m: {"online_steps": 10, "seeds": [], "failure_episodes": [],
                                              "failure_steps": [], "episodes": [], "normalized_return_before": [],
                                              "normalized_return_after": [], "shield_trigger_rate": [],
                                              "shield_misses": [], "recovery_failures": [], "wall_seconds": [],
                                              "steps_per_second": []} for m in METHODS}}}
    run = {"counters": {"failure_episodes": 2, "failure_steps": 2, "episodes": 5, "steps": 10, "shield_triggers": 3,
                        "shield_misses": 1, "recovery_failures": 1},
           "before": {"normalized_return": 1.0}, "after": {"normalized_return": 2.0}, "online_seconds": 1.0,
           "steps_per_second": 10.0}
    add_run(results["tasks"]["bounded_push"]["farl"], run, 0)
    text = render_markdown(results)
    assert "Partial results" in text and "1518.3" in text and "-37.4 %" in text
    write_outputs(results, tmp_path, plot=False)
    assert json.loads((tmp_path / "failurebench.json").read_text())["tasks"]["bounded_push"]["farl"][
        "shield_trigger_rate"] == [0.3]
