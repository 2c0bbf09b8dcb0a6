"""config/farl/<task>.yaml: every task loads, typos and bad values are one-line errors naming file and key."""
from __future__ import annotations

import pytest

from farl_common.errors import ConfigError
from farl_common.paths import config_dir
from farl_learner.config import FarlConfig, apply_overrides, load_farl_config

TASKS = sorted(p.stem for p in (config_dir() / "farl").glob("*.yaml"))


def test_the_four_failurebench_tasks_have_configs():
    assert {"bounded_push", "bounded_soccer", "fragile_push_wall", "obstructed_push"} <= set(TASKS)


@pytest.mark.parametrize("task", TASKS)
def test_task_config_loads(task):
    cfg = load_farl_config(task)
    assert cfg.task == task and cfg.risk.horizon >= 1 and 0 < cfg.risk.gamma_risk <= 1
    assert isinstance(cfg.world_model.hidden, tuple)


def test_overrides_are_typed_and_checked():
    cfg = apply_overrides(FarlConfig(), {"ppo.learning_rate": 1, "networks.policy_hidden": [8, 8]})
    assert cfg.ppo.learning_rate == 1.0 and cfg.networks.policy_hidden == (8, 8)
    assert FarlConfig().ppo.learning_rate != 1.0  # the original is untouched
    for bad, key in (({"ppo.lr": 1}, "ppo.lr"), ({"risk.horizon": "ten"}, "risk.horizon"),
                     ({"risk.gamma_risk": 1.5}, "risk.gamma_risk"), ({"nope.x": 1}, "nope.x")):
        with pytest.raises(ConfigError) as error:
            apply_overrides(FarlConfig(), bad)
        assert key in str(error.value) and "\n" not in str(error.value)


def test_unknown_key_in_a_file_names_file_and_key(tmp_path):
    path = tmp_path / "mytask.yaml"
    path.write_text("task: mytask\nrisk:\n  horizn: 5\n")
    with pytest.raises(ConfigError) as error:
        load_farl_config(path)
    message = str(error.value)
    assert str(path) in message and "risk.horizn" in message and "\n" not in message
