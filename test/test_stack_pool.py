"""Pooling stack benchmark runs (benchmarks/stack_pool.py): more episodes of one set-up, never two set-ups.

The script runs in a subprocess, as a user runs it: it goes through the benchmarks'
shared start-up, which sets a private ROS domain for its own process.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "stack_pool.py"


def arm(command: str, verdicts: list[str], sha: str = "a" * 64) -> dict:
    rows = [{"episode": i + 1, "verdict": v, "return": -50.0 if v == "success" else -100.0, "steps": 50,
             "failure_pairs": int(v == "failure"), "interventions": 0} for i, v in enumerate(verdicts)]
    return {"command": command, "per_episode": rows, "failure_pairs": verdicts.count("failure"),
            "failure_episodes": verdicts.count("failure"), "successes": verdicts.count("success"),
            "mean_return": sum(r["return"] for r in rows) / len(rows), "shield_triggers": 7,
            "failure_kinds": {"miss": verdicts.count("failure"), "recovery_failure": 0},
            "models_manifest_sha256": sha}


def run_file(tmp: Path, name: str, seed: int, off: list[str], farl: list[str], farl_sha: str = "a" * 64,
             extra: str = "", off_sha: str = "a" * 64) -> Path:
    base = f"farl run bounded_soccer --episodes {len(off)} --out runs/x seed:={seed} robot_ip:=127.0.1.{seed + 1}"
    data = {"task": "bounded_soccer", "seed": seed, "load_avg_start": [1.0, 1.0, 1.0],
            "shield_off": arm(f"{base} shield:=false{extra}", off, off_sha), "farl": arm(base + extra, farl, farl_sha)}
    path = tmp / f"{name}.json"
    path.write_text(json.dumps(data))
    return path


def pool(tmp: Path, *paths: Path, options: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, paths), "--name", "pooled", *options,
                           "--results-dir", str(tmp / "out")], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_two_seeds_pool_into_one_table_with_every_episode(tmp_path):
    a = run_file(tmp_path, "a", 0, ["failure"] * 4 + ["timeout"] * 6, ["failure"] + ["success"] * 9)
    b = run_file(tmp_path, "b", 1, ["failure"] * 6 + ["success"] * 4, ["failure"] * 2 + ["timeout"] * 8)
    result = pool(tmp_path, a, b)
    assert result.returncode == 0, result.stderr
    pooled = json.loads((tmp_path / "out" / "pooled.json").read_text())
    assert pooled["seeds"] == [0, 1]
    assert pooled["shield_off"]["episodes"] == 20 and pooled["farl"]["episodes"] == 20
    assert pooled["shield_off"]["failure_episodes"] == 10 and pooled["farl"]["failure_episodes"] == 3
    assert pooled["change_pct"]["failure_episodes"] == pytest.approx(-70.0)
    lo, hi = pooled["change_ci95"]["failure_episodes"]
    assert lo <= -70.0 <= hi
    assert pooled["farl"]["successes"] == 9
    assert "| `a` | 0 | 4 -> 1 |" in (tmp_path / "out" / "pooled.md").read_text()


def test_runs_of_another_set_up_are_refused_with_the_reason(tmp_path):
    a = run_file(tmp_path, "a", 0, ["failure", "timeout"], ["timeout", "timeout"])
    other_args = run_file(tmp_path, "b", 1, ["failure", "timeout"], ["timeout", "timeout"], extra=" learn:=false")
    result = pool(tmp_path, a, other_args)
    assert result.returncode == 2 and "not the same set-up" in result.stderr

    retrained = run_file(tmp_path, "c", 1, ["failure", "timeout"], ["timeout", "timeout"], farl_sha="b" * 64)
    result = pool(tmp_path, a, retrained)
    assert result.returncode == 2 and "another model folder" in result.stderr

    same_seed = run_file(tmp_path, "d", 0, ["failure", "timeout"], ["timeout", "timeout"])
    result = pool(tmp_path, a, same_seed)
    assert result.returncode == 2 and "seed 0" in result.stderr
    assert not (tmp_path / "out").exists()  # nothing written for a refused pool


def test_an_arm_is_pooled_across_model_folders_only_when_asked_and_the_table_says_so(tmp_path):
    a = run_file(tmp_path, "a", 0, ["failure", "timeout"], ["timeout", "timeout"], off_sha="a" * 64)
    b = run_file(tmp_path, "b", 1, ["failure", "timeout"], ["timeout", "timeout"], off_sha="c" * 64)
    assert pool(tmp_path, a, b).returncode == 2
    result = pool(tmp_path, a, b, options=("--allow-other-models", "shield_off"))
    assert result.returncode == 0, result.stderr
    pooled = json.loads((tmp_path / "out" / "pooled.json").read_text())
    assert pooled["shield_off"]["episodes"] == 4 and pooled["models_by_arm"]["shield_off"] == ["a" * 12, "c" * 12]
    assert "Pooled across model folders in the shield_off arm" in (tmp_path / "out" / "pooled.md").read_text()

    retrained = run_file(tmp_path, "c", 2, ["failure", "timeout"], ["timeout", "timeout"], farl_sha="b" * 64)
    result = pool(tmp_path, a, retrained, options=("--allow-other-models", "shield_off"))
    assert result.returncode == 2 and "the farl arm ran another model folder" in result.stderr
