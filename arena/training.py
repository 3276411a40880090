"""Training a seat with Stable-Baselines3 PPO against frozen policies in the other seats.

The same machinery trains a toy victim against a fixed opponent and, later, an
adversary against a frozen victim: ``VictimEmbeddedEnv`` hides the frozen seats.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agents.policies import Policy

log = logging.getLogger(__name__)


class TrainingError(ValueError):
    """Bad training input: timesteps <= 0, unknown seat, unusable output directory."""


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
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


PRESETS: dict[str, PPOConfig] = {
    "toy_pass_v0": PPOConfig(),
    "toy_catch_v0": PPOConfig(
        n_steps=128, batch_size=256, n_epochs=4, ent_coef=0.01, net_arch=(), cnn=True
    ),
}


def preset(env_id: str) -> PPOConfig:
    return PRESETS.get(env_id, PPOConfig())


def progress_callback(total: int, desc: str) -> Any:
    """An SB3 callback driving a tqdm bar: timesteps, steps/s and the rolling win rate."""
    from stable_baselines3.common.callbacks import BaseCallback
    from tqdm import tqdm

    class TqdmCallback(BaseCallback):
        def _on_training_start(self) -> None:
            self.bar = tqdm(total=total, desc=desc, unit="step", disable=None, leave=False)
            self.outcomes: list[float] = []

        def _on_step(self) -> bool:
            self.bar.update(self.training_env.num_envs)
            for info in self.locals.get("infos", ()):
                if "outcome" in info:
                    self.outcomes = [*self.outcomes[-99:], float(info["outcome"] == "win")]
            if self.outcomes and self.n_calls % 50 == 0:
                self.bar.set_postfix(win=f"{np.mean(self.outcomes):.2f}")
            return True

        def _on_training_end(self) -> None:
            self.bar.close()

    return TqdmCallback()


def save_atomic(model: Any, path: Path, *, keep_optimizer: bool = True) -> None:
    """``model.save`` to a temporary file in the same directory, then rename.

    Without ``keep_optimizer`` the optimiser state (needed only to resume training,
    two thirds of the file) is left out: the file still loads as a policy.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".zip", dir=path.parent)
    os.close(fd)
    try:
        model.save(tmp)
        if not keep_optimizer:
            _drop_members(Path(tmp), {"policy.optimizer.pth"})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _drop_members(path: Path, names: set[str]) -> None:
    import zipfile

    with zipfile.ZipFile(path) as src:
        members = [(i, src.read(i)) for i in src.infolist() if i.filename not in names]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info, data in members:
            dst.writestr(info, data)


def train_seat(
    env_id: str,
    learner_seat: str,
    frozen: Mapping[str, Policy | str],
    *,
    timesteps: int,
    seed: int,
    out: str | Path,
    config: PPOConfig | None = None,
    progress: bool = True,
) -> Path:
    """Train ``learner_seat`` with PPO against ``frozen``; save ``out`` (an SB3 .zip)."""
    if not isinstance(timesteps, int) or timesteps <= 0:
        raise TrainingError(f"timesteps must be a positive integer, got {timesteps!r}")
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    from agents.networks import SmallCNN
    from arena.embedding import VictimEmbeddedEnv

    config = config or preset(env_id)
    out = Path(out)
    if not out.parent.is_dir():
        raise TrainingError(f"output directory {out.parent} does not exist")

    def make(rank: int):
        def thunk():
            env = VictimEmbeddedEnv(env_id, learner_seat, frozen)
            env.reset(seed=seed * 1000 + rank)
            return env

        return thunk

    venv = DummyVecEnv([make(i) for i in range(config.n_envs)])
    policy_kwargs: dict[str, Any] = {"net_arch": list(config.net_arch)}
    if config.cnn:
        policy_kwargs["features_extractor_class"] = SmallCNN
    model = PPO(
        "CnnPolicy" if config.cnn else "MlpPolicy",
        venv,
        n_steps=config.n_steps,
        batch_size=config.batch_size,
        n_epochs=config.n_epochs,
        learning_rate=config.learning_rate,
        ent_coef=config.ent_coef,
        gamma=config.gamma,
        policy_kwargs=policy_kwargs,
        seed=seed,
        verbose=0,
        device="cpu",
        **config.extra,
    )
    callback = progress_callback(timesteps, f"train {env_id}:{learner_seat}") if progress else None
    model.learn(timesteps, callback=callback)
    save_atomic(model, out, keep_optimizer=False)
    venv.close()
    log.info("saved %s", out)
    return out
