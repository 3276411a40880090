"""An adversary training run on disk: its configuration, checkpoints, statistics, results.

``DIR/`` holds ``adversary_run.json`` (``RunMarker``: game, victims, seed, budget and
the resolved ``AdversaryConfig``), ``metadata.json``, ``progress.csv`` (``PROGRESS``
columns), ``tb/``, ``checkpoints/state.json`` (``CheckpointState``) naming the latest
``step_N.zip`` and its ``step_N_norm.npz`` (``NormStats``), and when finished
``policy.zip`` + ``policy_norm.npz`` + ``results.json`` (``TrainingResults``).
``TrainingRunFiles`` names every path once; every name read from a file stays inside
its directory, links included.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from agents.numbers import parse_number, parse_seed
from arena.artifacts.base import described, read_json
from arena.artifacts.training_config import AdversaryConfig, PPOConfig, TrainingRunError
from arena.io import atomic_path

RUN_MARKER = "adversary_run.json"
PROGRESS = ("timesteps", "win_rate", "episodes", "steps_per_s", "shaping")
"""The columns of ``progress.csv``, one row per PPO rollout."""
EVALUATION = ("timesteps", "episodes", "win_rate", "win_low", "win_high", "loss_rate")
"""The columns of ``evaluation.csv``: the adversary (greedy) against the victims (as
they act in training) every ``eval_every`` steps, win rate with its 95% interval."""
MAX_TIMESTEPS = 10**10

__all__ = [
    "EVALUATION",
    "PROGRESS",
    "RUN_MARKER",
    "AdversaryConfig",
    "CheckpointState",
    "NormStats",
    "PPOConfig",
    "RunMarker",
    "TrainingResults",
    "TrainingRunError",
    "TrainingRunFiles",
    "child_file",
]


@dataclass(frozen=True)
class RunMarker:
    """``adversary_run.json``: what the run trains, against whom, with what recipe.
    Files written before schema versions had none: they are version 1 as they are."""

    SCHEMA_VERSION: ClassVar[int] = 1

    env: str
    victims: dict[str, str]
    seed: int
    config: AdversaryConfig
    adversary_seat: str | None = None
    victim_refs: dict[str, Any] = field(default_factory=dict)
    timesteps: int | None = None
    init: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": self.SCHEMA_VERSION,
            "env": self.env,
            "victims": dict(self.victims),
            "victim_refs": dict(self.victim_refs),
            "adversary_seat": self.adversary_seat,
            "seed": self.seed,
            "timesteps": self.timesteps,
            "config": self.config.to_json(),
            "init": self.init,
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> RunMarker:
        if not isinstance(data, dict):
            raise TrainingRunError(f"{where} must hold a JSON object, not {described(data)}")
        data = dict(data)
        version = data.pop("schema_version", cls.SCHEMA_VERSION)
        if version != cls.SCHEMA_VERSION or isinstance(version, bool):
            raise TrainingRunError(
                f"{where}: schema_version {version!r} is not supported; this arena reads "
                f"schema_version {cls.SCHEMA_VERSION}"
            )
        types: dict[str, tuple[Any, str]] = {
            "env": (str, "text"),
            "victims": (dict, "an object"),
            "victim_refs": (dict, "an object"),
            "adversary_seat": ((str, type(None)), "text"),
            "seed": (None, "a seed"),
            "timesteps": (None, "a number of steps"),
            "config": (dict, "an object"),
            "init": ((str, type(None)), "text or null"),
        }
        valid = ", ".join(types)
        unknown = sorted(set(data) - set(types))
        if unknown:
            raise TrainingRunError(f"{where}: unknown key {unknown[0]!r}; valid keys: {valid}")
        missing = [k for k in ("env", "victims", "seed", "config") if k not in data]
        if missing:
            raise TrainingRunError(f"{where}: missing key {missing[0]!r}; valid keys: {valid}")
        for key, value in data.items():
            want, words = types[key]
            if want is not None and (isinstance(value, bool) or not isinstance(value, want)):
                raise TrainingRunError(f"{where}: {key!r} must be {words}, not {described(value)}")
        victims = data["victims"]
        if not victims or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in victims.items()
        ):
            raise TrainingRunError(f"{where}: 'victims' must map seats to policy specs")
        try:
            seed = parse_seed(data["seed"], "seed")
            steps = data.get("timesteps")
            if steps is not None:
                steps = parse_number(steps, "timesteps", low=1, high=MAX_TIMESTEPS, integer=True)
        except ValueError as exc:
            raise TrainingRunError(f"{where}: {exc}") from None
        return cls(
            env=data["env"],
            victims=dict(victims),
            seed=seed,
            config=AdversaryConfig.from_json(data["config"], where=f"{where}: config"),
            adversary_seat=data.get("adversary_seat"),
            victim_refs=dict(data.get("victim_refs") or {}),
            timesteps=steps,
            init=data.get("init"),
        )


@dataclass(frozen=True)
class CheckpointState:
    """``checkpoints/state.json``: the latest checkpoint's step and file names."""

    timesteps: int
    model: str
    norm: str

    @staticmethod
    def names(timesteps: int) -> tuple[str, str]:
        stem = f"step_{timesteps:010d}"
        return f"{stem}.zip", f"{stem}_norm.npz"

    def to_json(self) -> dict[str, Any]:
        return {"timesteps": self.timesteps, "model": self.model, "norm": self.norm}

    @classmethod
    def from_json(cls, data: Any, where: str) -> CheckpointState:
        if not isinstance(data, dict) or not {"model", "norm"} <= set(data):
            raise TrainingRunError(f"{where}: want an object with 'model' and 'norm' file names")
        steps = data.get("timesteps", 0)
        if type(steps) is not int or steps < 0:
            raise TrainingRunError(f"{where}: checkpoint timesteps must be an integer >= 0")
        return cls(steps, data["model"], data["norm"])


NORM_ARRAYS = ("obs_mean", "obs_var", "obs_count", "ret_mean", "ret_var", "ret_count")
NORM_SCALARS = ("clip_obs", "epsilon", "norm_obs")


@dataclass(frozen=True)
class NormStats:
    """SB3 ``VecNormalize`` statistics as plain arrays (``*_norm.npz``, no pickle)."""

    obs_mean: np.ndarray
    obs_var: np.ndarray
    clip_obs: float
    epsilon: float
    norm_obs: bool
    obs_count: float = 0.0
    ret_mean: float = 0.0
    ret_var: float = 1.0
    ret_count: float = 1e-4
    """SB3's ``RunningMeanStd`` starts at 1e-4 too."""

    @classmethod
    def of(cls, vec_normalize: Any) -> NormStats:
        """The statistics of a ``VecNormalize`` now."""
        rms = getattr(vec_normalize, "obs_rms", None) if vec_normalize.norm_obs else None
        shape = vec_normalize.observation_space.shape
        return cls(
            obs_mean=np.asarray(rms.mean if rms is not None else np.zeros(shape)),
            obs_var=np.asarray(rms.var if rms is not None else np.ones(shape)),
            obs_count=float(rms.count if rms is not None else 0.0),
            ret_mean=float(vec_normalize.ret_rms.mean),
            ret_var=float(vec_normalize.ret_rms.var),
            ret_count=float(vec_normalize.ret_rms.count),
            clip_obs=float(vec_normalize.clip_obs),
            epsilon=float(vec_normalize.epsilon),
            norm_obs=bool(vec_normalize.norm_obs),
        )

    def apply(self, vec_normalize: Any) -> None:
        """Continue from these statistics (resume, fine-tuning)."""
        if vec_normalize.norm_obs and self.norm_obs:
            if self.obs_mean.shape != vec_normalize.obs_rms.mean.shape:
                raise TrainingRunError(
                    f"normalization statistics are for observations of shape "
                    f"{self.obs_mean.shape}, this game's are {vec_normalize.obs_rms.mean.shape}"
                )
            vec_normalize.obs_rms.mean = self.obs_mean.astype(np.float64)
            vec_normalize.obs_rms.var = self.obs_var.astype(np.float64)
            vec_normalize.obs_rms.count = self.obs_count
            vec_normalize.clip_obs = self.clip_obs
            vec_normalize.epsilon = self.epsilon
        vec_normalize.ret_rms.mean = np.float64(self.ret_mean)
        vec_normalize.ret_rms.var = np.float64(self.ret_var)
        vec_normalize.ret_rms.count = self.ret_count

    def write(self, path: Path) -> None:
        arrays: dict[str, Any] = {
            k: np.asarray(getattr(self, k)) for k in (*NORM_ARRAYS, *NORM_SCALARS)
        }
        with atomic_path(path) as tmp:
            np.savez(tmp, **arrays)

    @classmethod
    def read(cls, path: Path, shape: tuple[int, ...] | None = None) -> NormStats:
        """The statistics in ``path``, each checked (finite, shapes, signs); with
        ``shape``, the observations' must be it. Files of policies exported from the
        zoo hold only the observation statistics: the return ones default."""
        from agents.npz import NpzError, read_npz

        try:
            data = read_npz(path)
        except NpzError as exc:
            raise TrainingRunError(f"unreadable normalization: {exc}") from None
        need = ("obs_mean", "obs_var", *NORM_SCALARS)
        missing = [k for k in need if k not in data]
        if missing:
            raise TrainingRunError(f"{path}: normalization lacks {', '.join(missing)}")
        for key in ("obs_mean", "obs_var"):
            value = data[key]
            if value.dtype.kind not in "fiu" or not np.isfinite(value).all():
                raise TrainingRunError(f"{path}: {key} must be finite numbers, got {value.dtype}")
            if shape is not None and value.shape != tuple(shape):
                raise TrainingRunError(
                    f"{path}: {key} must be finite numbers of shape {tuple(shape)}, got "
                    f"{value.dtype} {value.shape}"
                )
        if data["obs_mean"].shape != data["obs_var"].shape:
            raise TrainingRunError(f"{path}: obs_mean and obs_var differ in shape")
        if (data["obs_var"] < 0).any():
            raise TrainingRunError(f"{path}: obs_var must be non-negative")
        scalars: dict[str, float] = {}
        for key in (*NORM_SCALARS, *(k for k in NORM_ARRAYS[2:] if k in data)):
            value = data[key]
            if value.shape != () or value.dtype.kind not in "fiub" or not np.isfinite(value):
                raise TrainingRunError(f"{path}: {key} must be one finite number")
            scalars[key] = float(value)
        if not scalars["epsilon"] > 0 or not scalars["clip_obs"] > 0:
            raise TrainingRunError(f"{path}: epsilon and clip_obs must be positive")
        if scalars.get("ret_var", 1.0) < 0:
            raise TrainingRunError(f"{path}: ret_var must be non-negative")
        return cls(
            obs_mean=data["obs_mean"],
            obs_var=data["obs_var"],
            clip_obs=scalars["clip_obs"],
            epsilon=scalars["epsilon"],
            norm_obs=bool(scalars["norm_obs"]),
            **{k: scalars[k] for k in NORM_ARRAYS[2:] if k in scalars},
        )


@dataclass(frozen=True)
class TrainingResults:
    """``results.json`` of a finished training session. Files written before schema
    versions had none: they are version 1 as they are."""

    SCHEMA_VERSION: ClassVar[int] = 1

    env: str
    adversary_seat: str
    victims: dict[str, str]
    timesteps: int
    seconds_this_session: float
    steps_per_s_this_session: float
    rolling_win_rate: float | None

    def to_json(self) -> dict[str, Any]:
        return {"schema_version": self.SCHEMA_VERSION, **asdict(self)}

    @classmethod
    def from_json(cls, data: Any, where: str) -> TrainingResults:
        if not isinstance(data, dict):
            raise TrainingRunError(f"{where} must hold a JSON object, not {described(data)}")
        data = dict(data)
        if data.pop("schema_version", cls.SCHEMA_VERSION) != cls.SCHEMA_VERSION:
            raise TrainingRunError(
                f"{where}: schema_version is not supported; this arena reads "
                f"schema_version {cls.SCHEMA_VERSION}"
            )
        for key in ("env", "adversary_seat"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise TrainingRunError(f"{where}: {key!r} must be a non-empty string")
        victims = data.get("victims")
        if not isinstance(victims, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in victims.items()
        ):
            raise TrainingRunError(f"{where}: 'victims' must map seats to policy specs")
        try:
            steps = parse_number(data.get("timesteps"), "timesteps", low=0, integer=True)
            numbers = {
                key: parse_number(data.get(key, 0.0), key, low=0.0)
                for key in ("seconds_this_session", "steps_per_s_this_session")
            }
            rate = data.get("rolling_win_rate")
            if rate is not None:
                rate = parse_number(rate, "rolling_win_rate", low=0.0, high=1.0)
        except ValueError as exc:
            raise TrainingRunError(f"{where}: {exc}") from None
        return cls(
            env=data["env"],
            adversary_seat=data["adversary_seat"],
            victims=dict(victims),
            timesteps=int(steps),
            rolling_win_rate=rate,
            **numbers,
        )


def child_file(base: Path, name: Any, what: str) -> Path:
    """``base / name`` for a plain file name read from a file, refused unless it stays
    inside ``base`` (no separators, no ``..``, no absolute path, no link leading out)."""
    if (
        not isinstance(name, str)
        or not name
        or name in (".", "..")
        or "\0" in name
        or "/" in name
        or "\\" in name
    ):
        raise TrainingRunError(f"{what}: {str(name)[:80]!r} is not a plain file name in {base}")
    path = base / name
    if not path.resolve().is_relative_to(base.resolve()):  # a link may not lead out
        raise TrainingRunError(f"{what}: {name!r} leads outside {base}")
    return path


@dataclass(frozen=True)
class TrainingRunFiles:
    """Every path of a training run directory, named once."""

    directory: Path

    @property
    def marker(self) -> Path:
        return self.directory / RUN_MARKER

    @property
    def metadata(self) -> Path:
        return self.directory / "metadata.json"

    @property
    def progress(self) -> Path:
        return self.directory / "progress.csv"

    @property
    def evaluation(self) -> Path:
        return self.directory / "evaluation.csv"

    @property
    def tensorboard(self) -> Path:
        return self.directory / "tb"

    @property
    def lock(self) -> Path:
        return self.directory / ".lock"

    @property
    def checkpoints(self) -> Path:
        return self.directory / "checkpoints"

    @property
    def state(self) -> Path:
        return self.checkpoints / "state.json"

    @property
    def policy(self) -> Path:
        return self.directory / "policy.zip"

    @property
    def norm(self) -> Path:
        return self.directory / "policy_norm.npz"

    @property
    def results(self) -> Path:
        return self.directory / "results.json"

    @property
    def best(self) -> Path:
        """``best/``: the checkpoint with the highest greedy evaluation so far, a run
        directory of its own (``run:DIR/best``): ``policy.zip``, ``policy_norm.npz``,
        the run's ``adversary_run.json`` and ``best.json`` (its step and score)."""
        return self.directory / "best"

    @property
    def best_record(self) -> Path:
        """``best/best.json``: the greedy evaluation that made ``best/`` the best
        (timesteps, episodes, win rate with its 95% interval)."""
        return self.best / "best.json"

    def best_score(self) -> dict[str, Any] | None:
        """``best/best.json`` (``None`` when there is no best, or it is unreadable)."""
        try:
            found = read_json(self.best_record, TrainingRunError)
        except TrainingRunError:
            return None
        ok = isinstance(found, dict) and type(found.get("win_rate")) in (int, float)
        ok = ok and type(found.get("timesteps")) is int
        return found if ok else None

    def is_run(self) -> bool:
        return self.marker.is_file()

    def has_checkpoint(self) -> bool:
        return self.state.is_file()

    def read_marker(self) -> RunMarker:
        return RunMarker.from_json(read_json(self.marker, TrainingRunError), str(self.marker))

    def latest_checkpoint(self) -> tuple[Path, Path, int]:
        """The latest checkpoint's policy and normalization files (inside
        ``checkpoints/``) and its timestep."""
        ckpt = child_file(self.directory, "checkpoints", str(self.directory))
        state = CheckpointState.from_json(read_json(self.state, TrainingRunError), str(self.state))
        model = child_file(ckpt, state.model, str(self.state))
        norm = child_file(ckpt, state.norm, str(self.state))
        for path in (model, norm):
            if not path.is_file():
                raise TrainingRunError(f"{self.state}: names {path.name}, which is missing")
        return model, norm, state.timesteps

    def policy_files(self) -> tuple[Path, Path | None]:
        """What ``run:DIR`` loads: the final policy (and its normalization if there is
        one), else the latest checkpoint of an unfinished run."""
        if self.policy.is_file():
            policy = child_file(self.directory, self.policy.name, str(self.directory))
            if not self.norm.is_file():
                return policy, None
            return policy, child_file(self.directory, self.norm.name, str(self.directory))
        if self.has_checkpoint():
            model, norm, _ = self.latest_checkpoint()
            return model, norm
        raise TrainingRunError(
            f"{self.directory} is not a training run: no policy.zip and no checkpoints/state.json"
        )
