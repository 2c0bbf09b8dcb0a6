"""Recorded demo episodes (MCAP, farl_teleop's recorder) -> the training dataset, at the control rate.

The observation of every step is made by `TaskSpec.build_observation` from the
recorded poses (/farl/robot/ee_pose as `tcp`, /farl/objects/<name>), the very
call the shield node makes online, and the action from the command the arm
actually executed (/farl/robot/executed, `TaskSpec.velocity_to_action`), so a
policy trained on demos sees and does exactly what it will see and do on the
robot. Steps are taken at control.rate_hz: the pose of each source is the
latest one at the tick (sample and hold, as the shield does), the action the
mean executed velocity until the next tick (zero when the arm was told
nothing). Reward and success come from the same spec as online; a step's cost
is 1 when a failure happened before the next tick, from the simulator's ground
truth (/farl/sim/scene_state) or from the operator's *failure* mark. An
episode ends at its first success or (terminate_on_failure) failure, like an
online episode; leading and trailing ticks without motion are dropped.

Unreadable, truncated or interrupted files are skipped with one line each;
the other episodes still convert.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from farl_common import interface as api
from farl_common.task_config import TaskConfig
from farl_common.task_spec import TCP, TaskSpec

from .format import KIND_FAILURE, KIND_RECOVERY, KIND_TASK, Dataset

KINDS = {"task": KIND_TASK, "recovery": KIND_RECOVERY, "failure": KIND_FAILURE}
MOTION_EPS = 1e-4  # m/s: slower than this counts as the arm standing still


@dataclass
class EpisodeSummary:
    """One line of `farl demos list`."""

    name: str
    status: str
    kind: str
    duration_s: float
    outcome: str
    failures: int
    labels: str
    operator: str
    problem: str = ""


@dataclass
class ConvertedEpisode:
    steps: dict[str, np.ndarray]
    kind: str
    outcome: str
    failure_steps: int
    reason: str  # success | failure | end


@dataclass
class ConversionReport:
    dataset: Dataset | None
    converted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # one line each

    def counts(self) -> dict[str, dict[str, int]]:
        """Per kind: episodes, episodes with a failure, steps."""
        out = {k: {"episodes": 0, "failure_episodes": 0, "steps": 0} for k in KINDS}
        if self.dataset is None:
            return out
        for kind, code in KINDS.items():
            mask = self.dataset.kind == code
            ids = np.unique(self.dataset.episode_id[mask])
            out[kind]["episodes"] = int(len(ids))
            out[kind]["steps"] = int(mask.sum())
            out[kind]["failure_episodes"] = int(sum(self.dataset.cost[self.dataset.episode_id == i].any() for i in ids))
        return out


def _failure_times(episode) -> list[float]:
    """Wall-clock times (s) of failures: sim ground truth turning true, operator failure marks."""
    times = []
    was = False
    for t, msg in episode.messages.get(api.SCENE_STATE.name, ()):
        try:
            failure = bool(json.loads(msg.data).get("failure"))
        except (ValueError, AttributeError):
            continue
        if failure and not was:
            times.append(t / 1e9)
        was = failure
    for label in episode.metadata.get("labels", ()):
        if label.get("label") == "failure":
            times.append(float(label["time"]))
    return sorted(times)


def failure_count(episode) -> int:
    """Failures in an episode: the operator's marks; without any, 1 if the simulator saw one."""
    marked = sum(1 for label in episode.metadata.get("labels", ()) if label.get("label") == "failure")
    if marked:
        return marked
    return int(bool(_failure_times(episode)))


def summarize(episode) -> EpisodeSummary:
    labels = " ".join(f"{l['label']}@{l['elapsed']:.1f}s" for l in episode.metadata.get("labels", ()))
    return EpisodeSummary(
        name=episode.path.name, status=episode.status, kind=episode.metadata.get("kind", "?"),
        duration_s=episode.duration_s, outcome=episode.metadata.get("outcome", "-"),
        failures=failure_count(episode), labels=labels or "-",
        operator=episode.metadata.get("operator", "-"), problem=episode.problem)


def _series(messages, value) -> tuple[np.ndarray, np.ndarray]:
    if not messages:
        return np.zeros(0), np.zeros((0, 3))
    return (np.array([t / 1e9 for t, _ in messages]), np.array([value(m) for _, m in messages], dtype=np.float64))


def _position(msg) -> list[float]:
    p = msg.pose.position
    return [p.x, p.y, p.z]


def _linear(msg) -> list[float]:
    v = msg.twist.linear
    return [v.x, v.y, v.z]


def convert_episode(episode, config: TaskConfig, spec: TaskSpec) -> ConvertedEpisode:
    """The control-rate steps of one readable episode; ValueError (one line) when it has none."""
    period = 1.0 / config.control.rate_hz
    poses = {}
    for source in spec.required_sources:
        topic = api.EE_POSE.name if source == TCP else api.object_topic(source).name
        times, values = _series(episode.messages.get(topic, ()), _position)
        if not len(times):
            raise ValueError(f"{episode.path}: no poses of {source!r} ({topic}) recorded")
        poses[source] = (times, values)
    exec_t, exec_v = _series(episode.messages.get(api.EXECUTED_COMMAND.name, ()), _linear)
    moving = np.linalg.norm(exec_v, axis=1) > MOTION_EPS if len(exec_t) else np.zeros(0, bool)
    if not moving.any():
        raise ValueError(f"{episode.path}: the arm never moved (no executed command)")
    start = max(max(t[0] for t, _ in poses.values()), exec_t[moving][0] - period)
    end = min(min(t[-1] for t, _ in poses.values()), exec_t[moving][-1] + period)
    ticks = np.arange(start, end, period)
    if len(ticks) < 2:
        raise ValueError(f"{episode.path}: shorter than two control ticks")

    def positions_at(t: float) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        """The newest pose of each source at t, as the shield node sees it, and when it was recorded."""
        out, sampled = {}, {}
        for source, (times, values) in poses.items():
            index = max(int(np.searchsorted(times, t, side="right")) - 1, 0)
            out[source], sampled[source] = values[index], float(times[index])
        return out, sampled

    def velocity_during(t0: float, t1: float) -> np.ndarray:
        inside = (exec_t >= t0) & (exec_t < t1)
        if inside.any():
            return exec_v[inside].mean(axis=0)
        before = np.searchsorted(exec_t, t0, side="right") - 1
        if before >= 0 and t0 - exec_t[before] <= config.control.command_timeout_s:
            return exec_v[before]
        return np.zeros(3)

    failures = np.asarray(_failure_times(episode))
    rows: dict[str, list] = {k: [] for k in ("obs", "action", "reward", "cost", "done", "timeout", "next_obs")}
    reason = "end"
    positions, sampled = positions_at(ticks[0])
    before, dt_before = None, None  # the first tick: at rest after the reset, velocity fields read zero
    for k in range(len(ticks) - 1):
        t0, t1 = ticks[k], ticks[k + 1]
        nxt, nxt_sampled = positions_at(t1)
        dt_next = spec.velocity_intervals(nxt_sampled, sampled, fallback=period)
        failure = bool(((failures > t0) & (failures <= t1)).any())
        success = spec.success(nxt)
        rows["obs"].append(spec.build_observation(positions, before, dt_before))
        rows["action"].append(spec.velocity_to_action(velocity_during(t0, t1)))
        rows["reward"].append(spec.reward(nxt, success, failure))
        rows["cost"].append(float(failure))
        rows["next_obs"].append(spec.build_observation(nxt, positions, dt_next))
        terminal = success or (failure and spec.terminate_on_failure)
        rows["done"].append(terminal)
        rows["timeout"].append(False)
        before, positions = positions, nxt
        sampled, dt_before = nxt_sampled, dt_next
        if terminal:
            reason = "success" if success else "failure"
            break
    if not rows["done"][-1]:
        rows["timeout"][-1] = True
    steps = {k: np.asarray(v) for k, v in rows.items()}
    return ConvertedEpisode(steps, episode.metadata.get("kind", "task"), episode.metadata.get("outcome", "-"),
                            int(steps["cost"].sum()), reason)


def convert_folder(folder: str | Path, config: TaskConfig, episodes: Iterable | None = None) -> ConversionReport:
    """Every usable episode of `folder` for `config`'s task into one Dataset (None when none converts)."""
    from farl_teleop.recording.episode_reader import iter_episodes

    spec = TaskSpec.from_config(config)
    report = ConversionReport(None)
    parts: list[tuple[ConvertedEpisode, str]] = []
    for episode in episodes if episodes is not None else iter_episodes(folder):
        if not episode.usable:
            report.skipped.append(episode.problem or f"{episode.path}: interrupted episode (marked by the recorder)")
            continue
        if episode.metadata.get("task") != config.task:
            report.skipped.append(f"{episode.path}: recorded for task {episode.metadata.get('task')!r}, "
                                  f"not {config.task!r}")
            continue
        if episode.metadata.get("kind") not in KINDS:
            report.skipped.append(f"{episode.path}: unknown kind {episode.metadata.get('kind')!r}")
            continue
        try:
            parts.append((convert_episode(episode, config, spec), episode.path.name))
        except ValueError as error:
            report.skipped.append(str(error))
            continue
        report.converted.append(episode.path.name)
    if not parts:
        return report
    arrays = {k: np.concatenate([p.steps[k] for p, _ in parts]) for k in parts[0][0].steps}
    arrays["kind"] = np.concatenate([np.full(len(p.steps["obs"]), KINDS[p.kind]) for p, _ in parts])
    arrays["episode_id"] = np.concatenate([np.full(len(p.steps["obs"]), i) for i, (p, _) in enumerate(parts)])
    report.dataset = Dataset(task=config.task, meta={
        "generator": "farl demos convert", "source": str(folder), "episodes": [name for _, name in parts],
        "control_rate_hz": config.control.rate_hz, "observation_layout": spec.layout()}, **arrays)
    return report
