"""Typed hyper-parameters of the FARL algorithms (config/farl/<task>.yaml).

Every number the algorithms use lives in one of the dataclasses below, with its
default and a one-line docstring (CleanRL's `Args`, split by component so the
world model, the task policy and the shield can be read and tuned apart).
A task's YAML file overrides any subset of them, section by section:

    ppo:
      learning_rate: 1.0e-4
    risk:
      horizon: 15

`load_farl_config(task)` reads the file with the stack's one config loader
(`farl_common.config`): it type-checks every value, runs each section's
`check()` and rejects unknown keys with one `ConfigError` line naming the file
and key, so a typo never silently falls back to a default.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from farl_common.config import ConfigProblem, apply_overrides as apply_to_mapping, build, load, to_mapping
from farl_common.errors import ConfigError
from farl_common.paths import config_dir


def _require(checks: dict[str, bool], values: Any) -> None:
    """Raise ConfigProblem for the first key whose range check fails (values: the section instance)."""
    for key, ok in checks.items():
        if not ok:
            raise ConfigProblem(key, f"out of range: {getattr(values, key)!r}")


@dataclass
class NetworkConfig:
    """Sizes of the policy and value MLPs."""

    policy_hidden: tuple[int, ...] = (256, 256)
    """Hidden layer widths of the Gaussian policies (task and recovery)."""
    value_hidden: tuple[int, ...] = (256, 256)
    """Hidden layer widths of the state-value and Q networks."""
    init_log_std: float = -1.0
    """Initial state-independent log standard deviation of the policies."""
    min_log_std: float = -5.0
    """Lower clamp of the learned log-std (keeps log-probs finite)."""
    max_log_std: float = 0.5
    """Upper clamp of the learned log-std (actions live in [-1, 1])."""


@dataclass
class BCConfig:
    """Behaviour cloning of an ensemble of Gaussian policies (Uni-O4 stage 1)."""

    ensemble_size: int = 4
    """Number of BC policies K; each sees its own bootstrap resample of the demos."""
    steps: int = 20_000
    """Gradient steps per ensemble member."""
    batch_size: int = 256
    """Transitions per gradient step."""
    learning_rate: float = 3e-4
    """Adam learning rate."""

    def check(self) -> None:
        _require({"ensemble_size": self.ensemble_size >= 1}, self)


@dataclass
class OfflineConfig:
    """Offline critic fitting and clipped policy improvement (Uni-O4 stage 2)."""

    critic_steps: int = 20_000
    """Gradient steps of the expectile Q/V fit on the dataset."""
    expectile: float = 0.7
    """Expectile tau of V(s) against Q(s,a): 0.5 = behaviour value (SARSA), ->1 = in-sample max."""
    discount: float = 0.99
    """Discount of the offline critic (the same as PPO's gamma online)."""
    critic_lr: float = 3e-4
    """Adam learning rate of Q and V."""
    target_tau: float = 0.005
    """Polyak rate of the target Q network."""
    policy_steps: int = 5_000
    """Gradient steps of clipped offline policy improvement per ensemble member."""
    policy_lr: float = 1e-4
    """Adam learning rate of the offline improvement."""
    clip_ratio: float = 0.25
    """PPO clip range of the ratio pi_new / pi_old in the offline objective."""
    old_policy_interval: int = 1_000
    """Steps between copying the improved policy into the behaviour (old) policy."""
    batch_size: int = 256
    """Transitions per gradient step (critic and policy)."""
    action_samples: int = 8
    """Actions sampled per state to estimate the baseline V_pi_old(s) = E_a Q(s, a)."""
    cost_penalty: float = 0.0
    """Reward subtracted per failure step (cost = 1) in the critic's target."""

    def check(self) -> None:
        _require({"expectile": 0.0 < self.expectile < 1.0, "discount": 0.0 < self.discount <= 1.0}, self)


@dataclass
class PPOConfig:
    """Online PPO fine-tuning of the task policy (Uni-O4 stage 3, and FARL)."""

    learning_rate: float = 3e-5
    """Adam learning rate of actor and critic (small: the policy is pre-trained)."""
    num_steps: int = 2048
    """Environment steps collected between PPO updates."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    update_epochs: int = 10
    """Passes over each rollout."""
    num_minibatches: int = 32
    """Minibatches per pass."""
    clip_coef: float = 0.2
    """Surrogate clipping coefficient."""
    ent_coef: float = 0.0
    """Entropy bonus coefficient."""
    vf_coef: float = 0.5
    """Value loss coefficient."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip."""
    target_kl: float = 0.05
    """Stop the epoch loop early when the approximate KL exceeds this (0 = never)."""
    norm_adv: bool = True
    """Normalise advantages per minibatch."""
    recovery_pg_weight: float = 1.0
    """Weight of shield-executed recovery steps in the policy-gradient term (1 = the paper: every executed
    transition; 0 = they train only the value function). pi_rec's actions are not samples of pi_task; a
    full-weight pull toward them can teach pi_task to back off the task as well as off the failure."""
    trigger_penalty: float = 0.0
    """> 0: at a step where the shield replaced pi_task's proposal, the policy gradient is taken on the
    *proposed* action, with this much subtracted from the step's reward (shielding with punishment): pi_task
    learns to stop proposing what the shield refuses, instead of being pulled toward pi_rec's action or
    learning nothing there. Needs the proposals (`action_task`) in the episode data. 0 = off."""

    def check(self) -> None:
        _require({"num_steps": self.num_steps >= self.num_minibatches >= 1, "gamma": 0.0 < self.gamma <= 1.0,
                  "recovery_pg_weight": 0.0 <= self.recovery_pg_weight <= 1.0,
                  "trigger_penalty": self.trigger_penalty >= 0.0}, self)


@dataclass
class SafeRLConfig:
    """The safe-RL baselines (PPO-Lagrangian, P3O, CPO) that fine-tune the same pretrained task policy.

    They see the binary failure cost (1 at a failure step) and keep the expected cost per episode under
    `cost_limit`; FailureBench episodes end at a failure, so an episode's cost is 0 or 1 and the limit
    is an allowed failure rate per episode. Defaults follow OmniSafe's where the quantity is the same;
    where it is not (its cost limit counts hazard steps over 1000-step episodes) the reason is given.
    """

    cost_limit: float = 0.05
    """d: allowed expected episode cost, i.e. failure rate per episode (Uni-O4 explores at ~10-30 %)."""
    cost_gamma: float = 0.99
    """Discount of the cost returns and the cost advantages."""
    cost_gae_lambda: float = 0.95
    """GAE lambda of the cost advantages."""
    cost_value_learning_rate: float = 3.0e-4
    """Adam learning rate of the cost critic V_c, which starts untrained (the reward critic is pretrained)."""
    lagrangian_init: float = 0.0
    """PPO-Lagrangian: the multiplier lambda before the first update."""
    lagrangian_learning_rate: float = 0.5
    """PPO-Lagrangian: lambda <- max(0, lambda + lr (J_c - d)) once per update. J_c - d is a failure-rate
    gap (~0.1), so 0.5 moves lambda by ~0.05 per update: a few dozen updates to reach lambda ~ 1."""
    p3o_kappa: float = 20.0
    """P3O: weight of the exact penalty kappa * max(0, L_c + J_c - d) (OmniSafe's default)."""
    cpo_max_kl: float = 0.01
    """CPO: trust region delta, KL(pi_old || pi_new) <= delta (OmniSafe's target_kl)."""
    cpo_cg_iters: int = 15
    """CPO: conjugate-gradient iterations for H^-1 g and H^-1 b."""
    cpo_cg_damping: float = 0.1
    """CPO: damping added to the Fisher-vector product (H + damping I)."""
    cpo_backtrack_steps: int = 15
    """CPO: line-search halvings before the update is skipped."""
    cpo_backtrack_coef: float = 0.8
    """CPO: step shrink factor per line-search step."""

    def check(self) -> None:
        _require({"cost_limit": self.cost_limit >= 0.0, "cost_gamma": 0.0 < self.cost_gamma <= 1.0,
                  "cost_gae_lambda": 0.0 <= self.cost_gae_lambda <= 1.0,
                  "cost_value_learning_rate": self.cost_value_learning_rate > 0.0,
                  "lagrangian_init": self.lagrangian_init >= 0.0,
                  "lagrangian_learning_rate": self.lagrangian_learning_rate >= 0.0,
                  "p3o_kappa": self.p3o_kappa >= 0.0, "cpo_max_kl": self.cpo_max_kl > 0.0,
                  "cpo_cg_iters": self.cpo_cg_iters >= 1, "cpo_cg_damping": self.cpo_cg_damping >= 0.0,
                  "cpo_backtrack_steps": self.cpo_backtrack_steps >= 1,
                  "cpo_backtrack_coef": 0.0 < self.cpo_backtrack_coef < 1.0}, self)


@dataclass
class AblationConfig:
    """The paper's two FARL ablations, each replacing one part of the shield (`farl finetune --method`).

    farl-qrisk: a Recovery-RL critic Q_risk(s, a) (discounted failure probability, learned offline on the
    same failure data as the world model, calibrated by the same rule) decides when to trigger, in place
    of the world-model rollout C_H. farl-mppi: the world model decides when, as in FARL, but the action
    executed is planned in the world model by MPPI instead of taken from the learned recovery policy.
    """

    q_risk_gamma: float = 0.85
    """gamma_safe of Q_risk = E[sum_k gamma_safe^k c_{t+k}] (Recovery RL uses 0.5-0.85 per task; 0.85
    looks ~1/(1-0.85) = 7 steps ahead, the same reach as FARL's H = 10 with gamma_risk 0.9)."""
    q_risk_steps: int = 10000
    """Gradient steps of the offline Q_risk training."""
    q_risk_batch_size: int = 256
    """Minibatch size of the Q_risk training."""
    q_risk_learning_rate: float = 3.0e-4
    """Adam learning rate of Q_risk."""
    q_risk_tau: float = 0.005
    """Polyak rate of Q_risk's target network."""
    mppi_samples: int = 64
    """Action sequences sampled per MPPI iteration and state."""
    mppi_iterations: int = 3
    """MPPI refinements of the sampling distribution per decision."""
    mppi_horizon: int = 10
    """Planning horizon in world-model steps (FARL's H)."""
    mppi_noise_std: float = 0.3
    """Standard deviation of the action perturbations (actions live in [-1, 1])."""
    mppi_temperature: float = 0.5
    """Softmax temperature of the sequence weights, relative to the spread of their scores."""
    mppi_risk_weight: float = 10.0
    """Cost of one predicted failure in reward units: score = sum_k gamma^k (r_k - w p_fail_k)."""

    def check(self) -> None:
        _require({"q_risk_gamma": 0.0 < self.q_risk_gamma < 1.0, "q_risk_steps": self.q_risk_steps >= 1,
                  "q_risk_batch_size": self.q_risk_batch_size >= 1,
                  "q_risk_learning_rate": self.q_risk_learning_rate > 0.0,
                  "q_risk_tau": 0.0 < self.q_risk_tau <= 1.0, "mppi_samples": self.mppi_samples >= 2,
                  "mppi_iterations": self.mppi_iterations >= 1, "mppi_horizon": self.mppi_horizon >= 1,
                  "mppi_noise_std": self.mppi_noise_std > 0.0, "mppi_temperature": self.mppi_temperature > 0.0,
                  "mppi_risk_weight": self.mppi_risk_weight >= 0.0}, self)


@dataclass
class WorldModelConfig:
    """Latent world model with a constraint head (TD-MPC2 style, see models/world_model.py)."""

    latent_dim: int = 64
    """Size of the latent state z."""
    hidden: tuple[int, ...] = (256, 256)
    """Hidden widths of every head."""
    horizon: int = 5
    """Steps of latent rollout per training sequence (multi-step consistency)."""
    steps: int = 20_000
    """Gradient steps."""
    batch_size: int = 256
    """Sequences per gradient step."""
    learning_rate: float = 3e-4
    """Adam learning rate."""
    rho: float = 0.9
    """Per-step weight decay of the loss along the training rollout (TD-MPC2's rho)."""
    consistency_coef: float = 1.0
    """Weight of the latent consistency loss ||next(z,a) - sg(encode(s'))||^2."""
    decoder_coef: float = 1.0
    """Weight of the next-observation reconstruction loss (gives the predicted hand path)."""
    reward_coef: float = 0.5
    """Weight of the reward regression loss."""
    constraint_coef: float = 1.0
    """Weight of the class-weighted constraint BCE loss."""
    value_coef: float = 0.1
    """Weight of the TD(0) value loss."""
    discount: float = 0.99
    """Discount of the value head."""
    failure_fraction: float = 0.25
    """Fraction of each batch's sequences that start within `horizon` steps before a failure."""
    constraint_pos_weight: float = 0.0
    """BCE weight of failure steps; 0 = automatic (#safe / #failure steps in sampled batches, capped at 100)."""
    grad_clip: float = 20.0
    """Global gradient-norm clip."""

    def check(self) -> None:
        _require({"horizon": self.horizon >= 1, "latent_dim": self.latent_dim >= 1,
                  "failure_fraction": 0.0 <= self.failure_fraction < 1.0}, self)


@dataclass
class RiskConfig:
    """The H-step risk C_H and the shield threshold eps_safe."""

    horizon: int = 10
    """H: C_H sums per-step failure probabilities over steps t..t+H of a world-model rollout."""
    gamma_risk: float = 0.9
    """Discount of the per-step failure probabilities in C_H."""
    target_miss_rate: float = 0.05
    """eps_safe is the largest threshold whose miss rate on held-out failure-preceding states is <= this."""
    max_needless_trigger_rate: float = 0.25
    """...unless that eps would trigger on more than this fraction of held-out safe states (then eps rises)."""
    holdout_fraction: float = 0.2
    """Fraction of failure-data episodes held out from world-model training for calibration."""
    epsilon_safe: float = 0.0
    """Fixed eps_safe; 0 = calibrate from held-out failure data (the default)."""
    recovery_hold_ticks: int = 0
    """Hysteresis: pi_rec keeps control this many ticks after each trigger (0 = the paper's per-tick rule;
    farl_common.recovery_hold). Written to the model folder's manifest, which the robot's shield reads."""

    def check(self) -> None:
        _require({
            "horizon": self.horizon >= 0,
            "gamma_risk": 0.0 < self.gamma_risk <= 1.0,
            "target_miss_rate": 0.0 <= self.target_miss_rate < 1.0,
            "max_needless_trigger_rate": 0.0 <= self.max_needless_trigger_rate <= 1.0,
            "holdout_fraction": 0.0 < self.holdout_fraction < 1.0,
            "epsilon_safe": self.epsilon_safe >= 0.0,
            "recovery_hold_ticks": isinstance(self.recovery_hold_ticks, int) and self.recovery_hold_ticks >= 0,
        }, self)


@dataclass
class OnlineConfig:
    """The online fine-tuning loop (FARL with the shield, Uni-O4 without)."""

    total_steps: int = 1_000_000
    """Environment steps of online fine-tuning (the paper: 10^6)."""
    eval_episodes: int = 10
    """Deterministic evaluation episodes before and after fine-tuning."""
    torch_threads: int = 1
    """torch intra-op threads (the learner must not starve the control loop)."""
    num_envs: int = 16
    """Parallel environments of the online loop (stepped in turn on one core): the policy and the shield's
    world-model rollout run once per step for all of them, batched (16: FARL at >= 60 % of Uni-O4's rate,
    benchmarks/results/failurebench_throughput.md). ppo.num_steps is the update size over all envs."""

    def check(self) -> None:
        _require({"num_envs": self.num_envs >= 1, "eval_episodes": self.eval_episodes >= 1}, self)


@dataclass
class FarlConfig:
    """Everything one task's FARL run needs."""

    task: str = "toy"
    """FailureBench task name (config/farl/<task>.yaml)."""
    seed: int = 0
    """Seed of torch, numpy and the environment."""
    networks: NetworkConfig = field(default_factory=NetworkConfig)
    bc: BCConfig = field(default_factory=BCConfig)
    offline: OfflineConfig = field(default_factory=OfflineConfig)
    recovery_bc: BCConfig = field(default_factory=lambda: BCConfig(ensemble_size=1))
    """Recovery policy BC (one policy: recovery demos are few and it is frozen online)."""
    recovery_offline: OfflineConfig = field(default_factory=lambda: OfflineConfig(cost_penalty=10.0))
    """Offline improvement of the recovery policy."""
    ppo: PPOConfig = field(default_factory=PPOConfig)
    safe_rl: SafeRLConfig = field(default_factory=SafeRLConfig)
    """Only the safe-RL baselines read it (`farl finetune --method ppo-lag|p3o|cpo`)."""
    ablation: AblationConfig = field(default_factory=AblationConfig)
    """Only the ablations read it (`farl finetune --method farl-qrisk|farl-mppi`)."""
    world_model: WorldModelConfig = field(default_factory=WorldModelConfig)
    risk: RiskConfig = field(default_factory=RiskConfig)
    online: OnlineConfig = field(default_factory=OnlineConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------- loading


def farl_config_path(task: str) -> Path:
    """config/farl/<task>.yaml."""
    return config_dir() / "farl" / f"{task}.yaml"


def load_farl_config(task_or_path: str | Path, overrides: Mapping[str, Any] | None = None) -> FarlConfig:
    """Read config/farl/<task>.yaml (or a path) into a FarlConfig, with dotted overrides applied.

    `overrides` maps dotted keys to values, e.g. {"ppo.learning_rate": 1e-4,
    "risk.horizon": 5}; a CLI passes `--set key=value` pairs through here.
    """
    text = str(task_or_path)
    path = Path(text) if text.endswith((".yaml", ".yml")) else farl_config_path(text)
    config = load(FarlConfig, path, overrides)
    if not isinstance(task_or_path, Path) and not text.endswith((".yaml", ".yml")) and config.task != text:
        raise ConfigError(path, f"says task {config.task!r} but was loaded for task {text!r}", key="task")
    return config


def apply_overrides(config: FarlConfig, overrides: Mapping[str, Any], source: str | Path = "<overrides>") -> FarlConfig:
    """A copy of `config` with dotted keys replaced, every value checked as if read from a file."""
    return build(FarlConfig, apply_to_mapping(to_mapping(config), overrides, source, FarlConfig), source)
