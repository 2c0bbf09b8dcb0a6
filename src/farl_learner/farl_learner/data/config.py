"""Typed data-generation settings: the `data:` section of config/failurebench/<task>.yaml."""
from __future__ import annotations

from dataclasses import dataclass

from farl_common.config import Section

from ..envs.spec import TaskSpec, load_task_spec

LURES: tuple[str, ...] = ("outside_boundary", "shove", "toward_obstacle")
CONTROLLERS: tuple[str, ...] = ("return_inside", "retreat")


@dataclass(frozen=True)
class MediumExpertConfig:
    """The "medium" expert of the task demos: scripted expert + Gaussian noise + random actions."""

    action_noise_std: float
    random_action_prob: float
    #: Episodes that fail are discarded; give up (error) after this many episodes.
    max_attempts: int


@dataclass(frozen=True)
class NearFailureConfig:
    """How near-failure start states for recovery demos are found.

    A lured, noisy expert (`lure`: outside_boundary = its goal moved
    `lure_margin` beyond a random edge of the boundary; shove = an expert that
    pushes the object from behind, without grasping, straight at the goal and
    so into the wall; toward_obstacle = its goal moved onto the obstacle) runs until a failure at step t; the state at t - k, k
    uniform in `rewind_steps`, is a near-failure state.

    `own_policy_fraction` of the demos start instead where the pretrained task
    policy, explored as in the failure data (`failure_data` noise), fails: the
    states pi_rec is asked to act in online are the task policy's, not the
    lure's, and a recovery policy cloned from lured states only drove into the
    wall from them (FailureBench fragile push wall: pi_rec failed 15 of 15 times
    from 11 steps before a FARL failure, the scripted controller 1 of 15).
    """

    lure: str
    lure_margin: float
    action_noise_std: float
    rewind_steps: tuple[int, int]
    max_attempts: int
    own_policy_fraction: float = 0.0


@dataclass(frozen=True)
class RecoveryConfig:
    """The scripted recovery controller and the acceptance test of a recovery demo."""

    controller: str
    #: Steps of one recovery demo.
    horizon: int
    #: Proportional gain from position error (m) to action (Meta-World experts use 10-25).
    gain: float
    #: return_inside: how far behind the object the hand lines up (m);
    #: retreat: distance from the obstacle the hand retreats to (m).
    clearance: float
    #: A demo is kept only if it never fails and ends with at least this margin (m).
    min_final_margin: float


@dataclass(frozen=True)
class FailureDataConfig:
    """Defaults of `generate_failure_data` (noise injected into a pre-trained policy)."""

    n_transitions: int
    noise_scale: float
    random_action_prob: float
    noise_correlation: float
    #: Fraction of episodes that start from a near-failure state (see failure_data.py).
    near_failure_start_prob: float


@dataclass(frozen=True)
class DataGenConfig:
    """Everything that determines a task's generated demos (besides the seed)."""

    task_demos: int
    recovery_demos: int
    medium_expert: MediumExpertConfig
    near_failure: NearFailureConfig
    recovery: RecoveryConfig
    failure_data: FailureDataConfig


def _probability(s: Section, name: str) -> float:
    return s.number(name, minimum=0.0, maximum=1.0)


def parse_data_config(s: Section) -> DataGenConfig:
    me, nf, rc, fd = (s.section(n) for n in ("medium_expert", "near_failure", "recovery", "failure_data"))
    rewind = nf.vector("rewind_steps", 2)
    if not (1 <= rewind[0] <= rewind[1]) or any(r != int(r) for r in rewind):
        raise nf.error("rewind_steps", f"need integers 1 <= min <= max, got {list(rewind)}")
    return DataGenConfig(
        task_demos=s.integer("task_demos", minimum=1),
        recovery_demos=s.integer("recovery_demos", minimum=1),
        medium_expert=MediumExpertConfig(me.number("action_noise_std", minimum=0.0),
                                         _probability(me, "random_action_prob"),
                                         me.integer("max_attempts", minimum=1)),
        near_failure=NearFailureConfig(nf.string("lure", choices=LURES), nf.number("lure_margin", minimum=0.0),
                                       nf.number("action_noise_std", minimum=0.0),
                                       (int(rewind[0]), int(rewind[1])), nf.integer("max_attempts", minimum=1),
                                       nf.number("own_policy_fraction", default=0.0, minimum=0.0, maximum=1.0)),
        recovery=RecoveryConfig(rc.string("controller", choices=CONTROLLERS), rc.integer("horizon", minimum=1),
                                rc.number("gain", positive=True), rc.number("clearance", positive=True),
                                rc.number("min_final_margin")),
        failure_data=FailureDataConfig(fd.integer("n_transitions", minimum=1), fd.number("noise_scale", minimum=0.0),
                                       _probability(fd, "random_action_prob"),
                                       fd.number("noise_correlation", minimum=0.0, maximum=0.999),
                                       _probability(fd, "near_failure_start_prob")),
    )


def load_data_config(task: str | TaskSpec) -> DataGenConfig:
    spec = load_task_spec(task) if isinstance(task, str) else task
    return parse_data_config(spec.data_section)
