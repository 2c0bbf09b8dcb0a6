"""The benchmark grid: keyed runs, never recomputed, retried when their worker dies, on a local Ray.

`farl bench failurebench --methods ...` runs (task, method, seed) through
farl_learner.grid. These tests use stand-in runs (a few lines each) so the
grid's own promises are what is checked: keys follow the config, finished runs
are read back instead of run, a worker killed mid-run is resubmitted, and an
exception in one run is reported without stopping the others.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from ray import cloudpickle

from farl_learner.grid import GridRun, RunKey, config_hash, finished, run_grid

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray's workers cannot import a test module

CONFIG = {"ppo": {"learning_rate": 3e-5}, "safe_rl": {"cost_limit": 0.05}, "ablation": {"mppi_samples": 64}}


def fake_run(folder: str, method: str, steps: int, value: float) -> dict:
    """Writes finetune.json as a real run does (config, steps), and returns it."""
    metrics = {"config": CONFIG, "steps": steps, "method": method, "value": value, "pid": os.getpid()}
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / "finetune.json").write_text(json.dumps(metrics))
    return metrics


def dies_once(folder: str, method: str, steps: int, value: float) -> dict:
    """Kills its own worker process the first time (as the OOM killer or a lost node would)."""
    marker = Path(folder) / "attempted"
    if not marker.exists():
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("1")
        os._exit(1)
    return fake_run(folder, method, steps, value)


def raises(folder: str, method: str, steps: int, value: float) -> dict:
    raise ValueError("this run's inputs are bad")


def grid_run(work: Path, method: str, seed: int, fn=fake_run, steps: int = 100) -> GridRun:
    """As `farl bench` builds each run: key, call, and the finished result if its folder has one."""
    key = RunKey("bounded_push", method, seed, config_hash(CONFIG, method, steps))
    folder = key.folder(work)
    return GridRun(key, fn, (str(folder), method, steps, float(seed)), cached=finished(folder, key))


def test_a_runs_key_follows_its_own_settings_only():
    base = config_hash(CONFIG, "farl", 100)
    other_sections = {**CONFIG, "safe_rl": {"cost_limit": 0.2}, "ablation": {"mppi_samples": 8}}
    assert config_hash(other_sections, "farl", 100) == base  # FARL reads neither section
    assert config_hash(other_sections, "ppo-lag", 100) != config_hash(CONFIG, "ppo-lag", 100)
    assert config_hash(other_sections, "farl-mppi", 100) != config_hash(CONFIG, "farl-mppi", 100)
    assert config_hash(CONFIG, "farl", 200) != base and config_hash(CONFIG, "uni-o4", 100) != base
    assert config_hash({"ppo": {"learning_rate": 1e-4}, **{k: v for k, v in CONFIG.items() if k != "ppo"}},
                       "farl", 100) != base


def test_shield_settings_key_only_the_shielded_methods():
    config = {**CONFIG, "risk": {"max_needless_trigger_rate": 0.25}, "ppo": {"learning_rate": 3e-5,
                                                                           "trigger_penalty": 1.0}}
    variant = {**config, "risk": {"max_needless_trigger_rate": 0.15}, "ppo": {"learning_rate": 3e-5,
                                                                             "trigger_penalty": 0.3}}
    for method in ("uni-o4", "ppo-lag", "p3o", "cpo"):  # no shield: a FARL variant reuses their runs
        assert config_hash(variant, method, 100) == config_hash(config, method, 100)
    for method in ("farl", "farl-qrisk", "farl-mppi"):
        assert config_hash(variant, method, 100) != config_hash(config, method, 100)
    lr = {**config, "ppo": {"learning_rate": 1e-4, "trigger_penalty": 1.0}}
    assert config_hash(lr, "uni-o4", 100) != config_hash(config, "uni-o4", 100)  # the rest of ppo still counts


def test_a_finished_run_in_a_folder_named_by_an_older_hash_is_found_by_its_content(tmp_path):
    key = RunKey("bounded_push", "uni-o4", 0, config_hash(CONFIG, "uni-o4", 100))
    fake_run(str(tmp_path / "bounded_push" / "uni-o4" / "seed0-0123456789ab"), "uni-o4", 100, 3.0)
    fake_run(str(tmp_path / "bounded_push" / "uni-o4" / "seed1-0123456789ab"), "uni-o4", 100, 4.0)
    assert finished(key.folder(tmp_path), key)["value"] == 3.0  # its own seed's folder, not seed 1's
    other = RunKey("bounded_push", "uni-o4", 0, config_hash(CONFIG, "uni-o4", 999))
    assert finished(other.folder(tmp_path), other) is None


def test_a_finished_run_is_read_back_only_when_its_key_matches(tmp_path):
    key = RunKey("bounded_push", "farl", 0, config_hash(CONFIG, "farl", 100))
    fake_run(str(key.folder(tmp_path)), "farl", 100, 1.0)
    assert finished(key.folder(tmp_path), key)["value"] == 1.0
    other = RunKey("bounded_push", "farl", 0, config_hash(CONFIG, "farl", 999))
    assert finished(key.folder(tmp_path), other) is None  # made with other steps: not this run
    legacy = tmp_path / "seed0"  # a run folder named before keys existed is accepted when its key matches
    fake_run(str(legacy), "farl", 100, 2.0)
    assert finished(tmp_path / "missing", key, legacy=legacy)["value"] == 2.0
    (key.folder(tmp_path) / "finetune.json").write_text('{"config": ')  # killed while writing
    assert finished(key.folder(tmp_path), key) is None


def test_in_process_a_failing_run_is_reported_and_the_others_still_run(tmp_path):
    runs = [grid_run(tmp_path, "farl", 0), grid_run(tmp_path, "cpo", 0, fn=raises), grid_run(tmp_path, "p3o", 0)]
    results = {r.key.method: r for r in run_grid(runs, jobs=1)}
    assert results["farl"].metrics["value"] == 0.0 and results["p3o"].metrics is not None
    assert results["cpo"].metrics is None and "ValueError: this run's inputs are bad" in results["cpo"].error


@pytest.mark.timeout(240)
def test_on_ray_runs_go_in_parallel_a_killed_worker_is_retried_and_nothing_finished_runs_again(tmp_path):
    runs = [grid_run(tmp_path, "farl", seed) for seed in range(3)] + [grid_run(tmp_path, "uni-o4", 0, fn=dies_once)]
    results = list(run_grid(runs, jobs=2, retries=2))
    assert len(results) == 4 and all(r.metrics is not None for r in results), [r.error for r in results]
    assert not any(r.cached for r in results)
    assert {r.metrics["pid"] for r in results} - {os.getpid()}  # they ran in Ray's workers, not here
    assert (Path(runs[-1].args[0]) / "attempted").is_file()  # the first attempt really died

    runs = [grid_run(tmp_path, "farl", seed) for seed in range(3)] + [grid_run(tmp_path, "uni-o4", 0, fn=dies_once)]
    again = list(run_grid(runs, jobs=2))  # all finished: read back, Ray is not even started
    assert len(again) == 4 and all(r.cached for r in again)
    assert sorted(r.metrics["value"] for r in again) == [0.0, 0.0, 1.0, 2.0]
