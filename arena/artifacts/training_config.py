"""How an adversary is trained: PPO's settings and the recipe (reward terms, schedule,
normalization), as ``adversary_run.json`` holds them, each field checked on reading."""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from agents.numbers import parse_number
from arena.artifacts.base import ArtifactError, described


class TrainingRunError(ArtifactError):
    """A training run's file that is missing, unreadable or inconsistent."""


@dataclass(frozen=True)
class PPOConfig:
    """PPO hyper-parameters (SB3 names)."""

    n_envs: int = 8
    n_steps: int = 256
    """Steps per env per rollout: the batch is ``n_envs * n_steps``."""
    batch_size: int = 512
    n_epochs: int = 10
    learning_rate: float = 1e-3
    ent_coef: float = 0.0
    gamma: float = 0.99
    net_arch: tuple[int, ...] = (64, 64)
    cnn: bool = False
    """Use ``agents.networks.SmallCNN`` as feature extractor (pixel games)."""
    lstm: bool = False
    """The zoo-shaped recurrent network (sb3-contrib ``RecurrentPPO``, a dense layer and
    an LSTM, ``agents.zoo.sb3_lstm_kwargs``; ``net_arch`` unused): how an LSTM zoo
    victim is fine-tuned."""
    log_std_init: float = 0.0
    """Initial log standard deviation of a Gaussian policy's actions (SB3's default 0:
    a spread of 1, which in the humanoids' ±0.4 controls is mostly clipped noise)."""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AdversaryConfig:
    """How an adversary is trained (Gleave et al. 2020, scaled for a small machine).

    The paper: PPO, batch 16,384, lr 3e-4, entropy 0, 4 minibatches, 4 epochs,
    observation and reward normalization, sparse win/loss reward with an optional
    dense shaping term annealed to zero. The reward terms are ``arena.rewards``.
    """

    ppo: PPOConfig
    checkpoint_every: int = 50_000
    """Timesteps between checkpoints: a killed run loses at most this much."""
    norm_obs: bool = True
    norm_reward: bool = True
    shaping: float = 0.0
    """Initial weight of the game's dense shaping reward (c)."""
    shaping_key: str = "shaping"
    """The info entry holding that term."""
    shaping_potential: bool = False
    """Treat the term as a level Φ and reward γΦ' − Φ (potential-based)."""
    victim_value: float = 0.0
    """Initial weight of the victim-value term (a): reward for lowering the frozen
    victim's own value estimate (potential-based)."""
    victim_divergence: float = 0.0
    """Initial weight of the action-divergence term (b): per step, the distance
    (``arena.rewards.action_distance``) between the victim's action distribution and
    the one it would have with the opponent's part of its observation frozen at the
    episode's start."""
    victim_reward: float = 0.0
    """Initial weight of the term (d): minus the victims' dense reward
    ``info[victim][victim_reward_key]`` per step (Guo et al. 2021's zero-sum reading)."""
    victim_reward_key: str = "reward_move"
    victim_novelty: float = 0.0
    """Initial weight of the term (e): the novelty of the victims' observations (random
    network distillation; IMAP's state coverage)."""
    victim_fall: float = 0.0
    """Initial weight of the term (f): Φ = −(the victim's torso height, m), rewarded
    γΦ' − Φ: lowering the victim's body, the way every adversary that wins these games
    wins (the victim falls, or crouches until it counts as down)."""
    flat_win: bool = False
    """Every win pays the game's goal reward (``arena.rewards.FlatWin``): the bonuses
    some games add to some wins, or take from them, are dropped."""
    white_box: bool = False
    """The adversary also observes each victim's greedy action and value, computed by
    a copy of the victim's network from the victim's observation (``agents.whitebox``);
    the trained adversary plays only where it can see its victim's observation."""
    victim_sampled: bool = False
    """The frozen victim samples its actions, as it will when scored (zoo agents were
    trained and are evaluated stochastic); off, it plays its mean action. Default on
    for the MuJoCo games; runs configured before this field existed keep the mean."""
    anneal_fraction: float = 0.5
    """The dense weights fall linearly to 0 over this fraction of training."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the game (e.g. ``shaping=0`` for the pure win/loss reward)."""
    workers: int = 0
    """Worker processes simulating the games (0: all in the main process)."""
    update_threads: int = 1
    """torch threads for PPO's gradient updates. With ``workers`` simulating, the
    workers sit idle during an update, so the update may use their cores; while
    collecting, the main process keeps one thread."""
    eval_every: int = 0
    """Timesteps between greedy evaluations (``evaluation.csv``); 0: none."""
    eval_episodes: int = 50

    RUNTIME: ClassVar[tuple[str, ...]] = (
        "workers",
        "update_threads",
        "eval_every",
        "eval_episodes",
        "checkpoint_every",
    )
    """Fields that change how fast a run goes, never what it computes: a resumed run
    may take new values."""

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["ppo"] = self.ppo.to_json()
        return out

    @classmethod
    def from_json(cls, data: Any, where: str = "config") -> AdversaryConfig:
        """The configuration a run saved, checked key by key: types, then ranges (a
        file could ask PPO for a 160 GB network or 10**12 epochs)."""
        fields = checked_fields(cls, data, where)
        ppo = checked_fields(PPOConfig, fields.get("ppo"), f"{where}.ppo")
        _check_ranges(ppo, f"{where}.ppo")
        _check_extra(ppo.get("extra", {}), f"{where}.ppo.extra")
        fields["ppo"] = PPOConfig(**ppo)
        _check_ranges(fields, where)
        for key, value in fields.get("env_kwargs", {}).items():
            if not _plain_scalar(value):
                raise TrainingRunError(
                    f"{where}.env_kwargs.{key} must be a finite number, text or a boolean"
                )
        return cls(**fields)


MAX_WEIGHT = 1e6
RANGES: dict[str, tuple[float, float]] = {
    "n_envs": (1, 4096),
    "n_steps": (1, 10**6),
    "batch_size": (2, 10**7),
    "n_epochs": (1, 1000),
    "learning_rate": (1e-9, 1.0),
    "ent_coef": (0.0, 1e3),
    "gamma": (0.0, 1.0),
    "log_std_init": (-10.0, 2.0),
    "checkpoint_every": (1, 10**10),
    "shaping": (0.0, MAX_WEIGHT),
    "victim_value": (0.0, MAX_WEIGHT),
    "victim_divergence": (0.0, MAX_WEIGHT),
    "victim_reward": (0.0, MAX_WEIGHT),
    "victim_novelty": (0.0, MAX_WEIGHT),
    "victim_fall": (0.0, MAX_WEIGHT),
    "anneal_fraction": (0.0, 1.0),
    "workers": (0, 256),
    "update_threads": (1, 64),
    "eval_every": (0, 10**10),
    "eval_episodes": (1, 10**6),
}
"""What a run file may ask for (inclusive); a value outside is refused on reading."""
PPO_EXTRA: dict[str, tuple[float, float]] = {
    "clip_range": (1e-6, 10.0),
    "gae_lambda": (0.0, 1.0),
    "vf_coef": (0.0, 1e3),
    "max_grad_norm": (1e-6, 1e6),
    "target_kl": (1e-9, 1e3),
}
"""The further PPO arguments a run file may set, each a number in its range."""


def _plain_scalar(value: Any) -> bool:
    if isinstance(value, bool | str):
        return True
    if isinstance(value, int):
        return abs(value) < 2**63
    return isinstance(value, float) and math.isfinite(value)


def _check_ranges(fields: dict[str, Any], where: str) -> None:
    for key, (low, high) in RANGES.items():
        if key in fields:
            value = fields[key]
            if not low <= value <= high:
                raise TrainingRunError(
                    f"{where}: {key!r} must be in [{low:g}, {high:g}], not {value!r}"
                )
    arch = fields.get("net_arch", ())
    if len(arch) > 8 or not all(1 <= width <= 4096 for width in arch):
        raise TrainingRunError(
            f"{where}: 'net_arch' must be at most 8 layers of 1 to 4096 units, not {list(arch)}"
        )


def _check_extra(extra: dict[str, Any], where: str) -> None:
    for key, value in extra.items():
        if key not in PPO_EXTRA:
            raise TrainingRunError(
                f"{where}: unknown PPO argument {key!r}; valid: {', '.join(PPO_EXTRA)}"
            )
        low, high = PPO_EXTRA[key]
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not (low <= value <= high)
        ):
            raise TrainingRunError(f"{where}: {key!r} must be a number in [{low:g}, {high:g}]")


def checked_fields(cls: type, data: Any, where: str) -> dict[str, Any]:
    """``data`` as keyword arguments of the dataclass ``cls``: a JSON object whose keys
    are its fields (all those without a default present), each of the field's type."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if not isinstance(data, dict):
        raise TrainingRunError(f"{where} must be a JSON object, not {described(data)}")
    for key in data:
        if key not in fields:
            raise TrainingRunError(f"{where}: unknown key {key!r}; valid keys: {', '.join(fields)}")
    for name, f in fields.items():
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required and name not in data:
            raise TrainingRunError(f"{where}: missing key {name!r}")
    out = dict(data)
    for key, value in data.items():
        hint = hints[key]
        origin = typing.get_origin(hint) or hint
        if hint is float:  # a finite number (parse_number)
            out[key] = parse_number(value, f"{where}.{key}", error=TrainingRunError)
            continue
        if hint is bool:
            ok, want = isinstance(value, bool), "true or false"
        elif hint is int:
            ok, want = isinstance(value, int) and not isinstance(value, bool), "an integer"
        elif origin is tuple:
            ok = isinstance(value, list | tuple) and all(
                isinstance(v, int) and not isinstance(v, bool) for v in value
            )
            want = "a list of integers"
            out[key] = tuple(value) if ok else value
        elif origin is dict or hint is PPOConfig:
            ok, want = isinstance(value, dict), "an object"
        else:
            ok, want = isinstance(value, origin), "text" if origin is str else str(hint)
        if not ok:
            raise TrainingRunError(f"{where}: {key!r} must be {want}, not {described(value)}")
    return out
