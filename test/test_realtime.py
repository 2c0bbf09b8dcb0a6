"""Real-time per robot mode: the real arm enforces it, sim never uses it, and the override is loud.

Kernel facts are injected, so every branch is covered on any machine (no arm here).
"""
from __future__ import annotations

import pytest
import yaml

from farl_common.errors import ConfigError, FarlInputError
from farl_common.paths import task_config_path
from farl_common.task_config import RealtimeConfig, load_task_config
from farl_control.robot.realtime import KernelFacts, plan_realtime, read_kernel_facts

RT = KernelFacts(release="6.8.2-rt11", version="#1 SMP PREEMPT_RT", realtime_flag="1\n")
GENERIC = KernelFacts(release="6.8.0-45-generic", version="#45 SMP PREEMPT_DYNAMIC", realtime_flag=None)
DEFAULT = RealtimeConfig()


def test_defaults_enforce_on_the_real_arm_and_ignore_in_sim():
    assert (DEFAULT.real, DEFAULT.sim) == ("enforce", "ignore")


def test_the_shipped_task_config_enforces_real_time_on_the_real_arm():
    realtime = load_task_config("fragile_push_wall").robot.realtime
    assert realtime.mode(simulated=False) == "enforce"
    assert realtime.mode(simulated=True) == "ignore"


def test_real_arm_on_an_rt_kernel_enforces_real_time_silently():
    assert plan_realtime(DEFAULT, simulated=False, kernel=RT, allow_non_rt_kernel=False).enforce is True
    assert plan_realtime(DEFAULT, simulated=False, kernel=RT, allow_non_rt_kernel=False).warning is None


def test_real_arm_on_a_generic_kernel_is_refused_with_the_key_the_kernel_and_both_ways_out():
    with pytest.raises(FarlInputError) as caught:
        plan_realtime(DEFAULT, simulated=False, kernel=GENERIC, allow_non_rt_kernel=False,
                      source="config/tasks/t.yaml")
    line = str(caught.value)
    assert "\n" not in line
    assert line.startswith("config/tasks/t.yaml: robot.realtime.real: enforce needs a PREEMPT_RT kernel")
    assert "6.8.0-45-generic" in line and "/sys/kernel/realtime absent" in line
    assert "docs/BRINGUP.md" in line and "allow_non_rt_kernel:=true" in line


def test_the_override_runs_without_real_time_and_says_so():
    plan = plan_realtime(DEFAULT, simulated=False, kernel=GENERIC, allow_non_rt_kernel=True)
    assert plan.enforce is False
    assert "allow_non_rt_kernel:=true OVERRIDES robot.realtime.real" in plan.warning
    assert "WITHOUT real-time" in plan.warning


def test_the_override_changes_nothing_on_an_rt_kernel():
    assert plan_realtime(DEFAULT, simulated=False, kernel=RT, allow_non_rt_kernel=True).enforce is True


@pytest.mark.parametrize("kernel", [RT, GENERIC])
def test_sim_never_uses_real_time_and_needs_no_override(kernel):
    plan = plan_realtime(DEFAULT, simulated=True, kernel=kernel, allow_non_rt_kernel=False)
    assert plan == plan.__class__(enforce=False, warning=None)


def test_a_config_that_ignores_real_time_for_the_real_arm_is_warned_about():
    plan = plan_realtime(RealtimeConfig(real="ignore"), simulated=False, kernel=GENERIC, allow_non_rt_kernel=False)
    assert plan.enforce is False and "robot.realtime.real: ignore" in plan.warning


def test_sim_set_to_enforce_follows_the_same_rule():
    with pytest.raises(FarlInputError, match="robot.realtime.sim"):
        plan_realtime(RealtimeConfig(sim="enforce"), simulated=True, kernel=GENERIC, allow_non_rt_kernel=False)


def test_the_kernel_is_real_time_only_when_libfrankas_flag_file_reads_1():
    """libfranka checks /sys/kernel/realtime, not uname: a PREEMPT_RT uname without the flag is not enough."""
    assert not KernelFacts("6.8.2-rt11", "#1 SMP PREEMPT_RT", None).realtime
    assert not KernelFacts("6.8.2-rt11", "#1 SMP PREEMPT_RT", "0\n").realtime
    assert KernelFacts("6.8.2-rt11", "#1 SMP PREEMPT_RT", "1\n").realtime


def test_read_kernel_facts_reads_the_flag_file(tmp_path):
    flag = tmp_path / "realtime"
    assert read_kernel_facts(flag).realtime_flag is None
    flag.write_text("1\n")
    assert read_kernel_facts(flag).realtime


def test_a_bad_mode_is_one_config_line(tmp_path):
    data = yaml.safe_load(task_config_path("fragile_push_wall").read_text())
    data["robot"]["realtime"] = {"real": "sometimes"}
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"robot.realtime.real: 'sometimes' is not one of enforce, ignore"):
        load_task_config(str(path))


def test_a_task_file_without_the_section_gets_the_safe_defaults(tmp_path):
    data = yaml.safe_load(task_config_path("fragile_push_wall").read_text())
    del data["robot"]["realtime"]
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(data))
    assert load_task_config(str(path)).robot.realtime == RealtimeConfig()
