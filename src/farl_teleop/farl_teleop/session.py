"""The operator's controls as a state machine (no ROS): episodes, kinds, labels, reset, speed, status line.

Every device (SpaceMouse buttons, keyboard keys, the scripted operator) sends
the same actions here; the session decides whether an action is allowed now
and turns it into operator events (OPERATOR_PAYLOAD) for the recorder and the
episode monitor. Rules:

- `start` only when no episode runs and, where the arm is real
  (`require_reset`), after *reset done*: someone has put the objects back.
- `stop` ends the episode with its outcome: the label given during it
  (failure wins over success), else `unlabelled`.
- `discard` drops the running episode, or the one just stopped if no new one
  started since.
- `failure` / `success` are labels with their time in the episode; outside an
  episode they are refused (nothing to label).
- the kind (task / recovery / failure) changes only between episodes.
A refused action is returned as a one-line reason, shown on the status line.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from farl_common.interface import DEMO_KINDS


@dataclass
class OperatorSession:
    operator: str
    device: str
    kind: str = "task"
    require_reset: bool = False
    speed_scales: tuple[float, ...] = (1.0,)
    scale_index: int = 0
    clock: Any = time.time

    recording: bool = False
    episode: int = 0  # the running (or last) episode's number, 1-based
    started_at: float = 0.0
    labels: list[tuple[str, float]] = field(default_factory=list)  # (label, seconds into the episode)
    awaiting_reset: bool = False
    stopped_episode: int | None = None  # a stopped episode that `discard` may still drop
    message: str = ""  # last refusal or confirmation, for the status line
    completed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in DEMO_KINDS:
            raise ValueError(f"kind must be one of {', '.join(DEMO_KINDS)}, got {self.kind!r}")

    @property
    def speed_scale(self) -> float:
        return self.speed_scales[self.scale_index]

    def elapsed(self) -> float:
        return self.clock() - self.started_at if self.recording else 0.0

    def _event(self, action: str, **extra: Any) -> dict[str, Any]:
        return {"action": action, "episode": self.episode, "kind": self.kind, "operator": self.operator,
                "device": self.device, "time": self.clock(), "elapsed": self.elapsed(), **extra}

    def outcome(self) -> str:
        names = [label for label, _ in self.labels]
        return "failure" if "failure" in names else "success" if "success" in names else "unlabelled"

    def handle(self, action: str) -> list[dict[str, Any]]:
        """Apply one action; returns the operator events to publish (empty when refused; see `message`)."""
        if action == "toggle":
            action = "stop" if self.recording else "start"
        if action.startswith("kind:"):
            return self._set_kind(action.split(":", 1)[1])
        if action in ("faster", "slower"):
            step = 1 if action == "faster" else -1
            self.scale_index = min(max(self.scale_index + step, 0), len(self.speed_scales) - 1)
            self.message = f"speed {self.speed_scale:.0%}"
            return []
        handler = getattr(self, f"_{action}", None)
        if handler is None:
            self.message = f"unknown action {action!r}"
            return []
        return handler()

    def _set_kind(self, kind: str) -> list[dict[str, Any]]:
        if kind not in DEMO_KINDS:
            self.message = f"unknown kind {kind!r}"
        elif self.recording:
            self.message = "kind changes between episodes: stop this one first"
        else:
            self.kind = kind
            self.message = f"next episode: {kind}"
        return []

    def _start(self) -> list[dict[str, Any]]:
        if self.recording:
            self.message = "an episode is already running"
            return []
        if self.require_reset and self.awaiting_reset:
            self.message = "put the objects back, then press reset done"
            return []
        self.episode += 1
        self.recording, self.started_at, self.labels = True, self.clock(), []
        self.stopped_episode = None
        self.message = f"episode {self.episode} ({self.kind}) started"
        return [self._event("start")]

    def _stop(self) -> list[dict[str, Any]]:
        if not self.recording:
            self.message = "no episode is running"
            return []
        event = self._event("stop", outcome=self.outcome())
        self.recording, self.awaiting_reset = False, True
        self.stopped_episode = self.episode
        self.completed += 1
        self.message = f"episode {self.episode} stopped: {event['outcome']}"
        return [event]

    def _discard(self) -> list[dict[str, Any]]:
        if self.recording:
            event = self._event("discard")
            self.recording, self.awaiting_reset = False, True
            self.message = f"episode {self.episode} discarded"
            return [event]
        if self.stopped_episode is not None:
            event = self._event("discard")
            self.stopped_episode = None
            self.completed -= 1
            self.message = f"episode {self.episode} discarded"
            return [event]
        self.message = "nothing to discard"
        return []

    def _label(self, label: str) -> list[dict[str, Any]]:
        if not self.recording:
            self.message = f"no episode is running: nothing to mark as {label}"
            return []
        self.labels.append((label, self.elapsed()))
        self.message = f"marked {label} at {self.elapsed():.1f} s"
        return [self._event(label)]

    def _failure(self) -> list[dict[str, Any]]:
        return self._label("failure")

    def _success(self) -> list[dict[str, Any]]:
        return self._label("success")

    def _reset_done(self) -> list[dict[str, Any]]:
        if self.recording:
            self.message = "stop the episode before the reset"
            return []
        self.awaiting_reset = False
        self.message = "reset done: ready"
        return [self._event("reset_done")]

    def status_line(self, moving: str = "") -> str:
        """One line for the terminal: what runs, its labels, speed, input, what the operator must do next."""
        if self.recording:
            labels = " ".join(f"{label}@{t:.1f}s" for label, t in self.labels) or "no labels"
            head = f"REC {self.kind} #{self.episode} {self.elapsed():5.1f}s [{labels}]"
        else:
            head = f"idle, next: {self.kind} #{self.episode + 1}"
            if self.awaiting_reset and self.require_reset:
                head += " (waiting for reset done)"
        parts = [head, f"done {self.completed}", f"speed {self.speed_scale:.0%}", f"input {moving or '-'}"]
        if self.message:
            parts.append(self.message)
        return " | ".join(parts)
