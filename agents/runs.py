"""``run:DIR``: an adversary (or fine-tuned victim) trained by ``arena train-adversary``.

The directory holds ``policy.zip`` (an SB3 file, loaded safely by ``agents.sb3``)
and ``policy_norm.npz`` (the observation normalisation as plain arrays). A run
that is still training, or was killed, loads from its latest checkpoint.
Also ``masked:SPEC``: a victim that sees the opponent frozen at its initial state.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from agents.npz import NpzError, read_npz
from agents.policies import Policy, TorchPolicy
from agents.sb3 import PolicyFileError, SB3TorchPolicy, sb3_victim
from agents.specs import PolicySpecError, register_kind, resolve


class NormalizedPolicy(TorchPolicy):
    """An SB3 policy trained behind ``VecNormalize``: normalisation inside ``forward``.

    The network input is the raw observation, so attacks and budgets stay in the
    game's own units; normalisation and clipping are part of the differentiable map.
    """

    def __init__(self, inner: SB3TorchPolicy, norm: dict[str, np.ndarray]):
        self.inner = inner
        self.observation_space = inner.observation_space
        self.action_space = inner.action_space
        self.mean = torch.as_tensor(norm["obs_mean"], dtype=torch.float32)
        self.std = torch.sqrt(
            torch.as_tensor(norm["obs_var"], dtype=torch.float32) + float(norm["epsilon"])
        )
        self.clip = float(norm["clip_obs"])
        self.enabled = bool(norm["norm_obs"])
        space = self.observation_space
        if isinstance(space, spaces.Box):
            self.input_low = torch.as_tensor(space.low, dtype=torch.float32)
            self.input_high = torch.as_tensor(space.high, dtype=torch.float32)

    def input_from_obs(self, observation: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(observation), dtype=torch.float32)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return x
        return torch.clamp((x - self.mean) / self.std, -self.clip, self.clip)

    def forward(self, x, state=None, episode_start=None):
        return self.inner.forward(self.normalize(x), state, episode_start)

    def value(self, x, state=None):
        return self.inner.value(self.normalize(x), state)


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
        raise PolicySpecError(f"{what}: {str(name)[:80]!r} is not a plain file name in {base}")
    path = base / name
    # a link may lead within the directory, never out of it
    if not path.resolve().is_relative_to(base.resolve()):
        raise PolicySpecError(f"{what}: {name!r} leads outside {base}")
    return path


def checkpoint_files(directory: Path) -> tuple[Path, Path, dict[str, Any]]:
    """The latest checkpoint's policy and normalisation files, from ``checkpoints/state.json``,
    and that state (``timesteps`` for a resume)."""
    ckpt = child_file(directory, "checkpoints", str(directory))
    state_path = ckpt / "state.json"
    try:
        state = json.loads(state_path.read_text())
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: bad JSON or UTF-8
        message = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
        raise PolicySpecError(f"{state_path}: unreadable checkpoint state: {message}") from None
    if not isinstance(state, dict) or not {"model", "norm"} <= set(state):
        raise PolicySpecError(f"{state_path}: want an object with 'model' and 'norm' file names")
    model = child_file(ckpt, state["model"], str(state_path))
    norm = child_file(ckpt, state["norm"], str(state_path))
    for path in (model, norm):
        if not path.is_file():
            raise PolicySpecError(f"{state_path}: names {path.name}, which is missing")
    return model, norm, state


def run_files(directory: Path) -> tuple[Path, Path | None]:
    """The policy file and normalisation file of a run directory."""
    if (directory / "policy.zip").is_file():
        policy = child_file(directory, "policy.zip", str(directory))
        norm = directory / "policy_norm.npz"
        return policy, child_file(directory, norm.name, str(directory)) if norm.is_file() else None
    if (directory / "checkpoints" / "state.json").is_file():
        model, norm, _ = checkpoint_files(directory)
        return model, norm
    raise PolicySpecError(
        f"{directory} is not a training run: no policy.zip and no checkpoints/state.json"
    )


def loaded_files(directory: str | Path) -> dict[str, Path]:
    """The files ``run:DIR`` loads (for their sha256 in a manifest)."""
    model, norm = run_files(Path(directory))
    return {"policy": model} | ({"norm": norm} if norm is not None else {})


NORM_KEYS = ("obs_mean", "obs_var", "epsilon", "clip_obs", "norm_obs")


def read_norm(path: Path, observation_space: spaces.Space) -> dict[str, np.ndarray]:
    """The observation normalisation of a run, checked against the seat's observations."""
    try:
        norm = {k: v for k, v in read_npz(path).items() if k in NORM_KEYS}
    except NpzError as exc:
        raise PolicySpecError(f"unreadable normalisation: {exc}") from None
    missing = [k for k in NORM_KEYS if k not in norm]
    if missing:
        raise PolicySpecError(f"{path}: normalisation lacks {', '.join(missing)}")
    shape = observation_space.shape or ()
    for key in ("obs_mean", "obs_var"):
        value = norm[key]
        if value.dtype.kind not in "fiu" or value.shape != shape or not np.isfinite(value).all():
            raise PolicySpecError(
                f"{path}: {key} must be finite numbers of shape {shape}, got {value.dtype} "
                f"{value.shape}"
            )
    if (norm["obs_var"] < 0).any():
        raise PolicySpecError(f"{path}: obs_var must be non-negative")
    for key in ("epsilon", "clip_obs", "norm_obs"):
        value = norm[key]
        if value.shape != () or value.dtype.kind not in "fiub" or not np.isfinite(value):
            raise PolicySpecError(f"{path}: {key} must be one finite number")
    if not float(norm["epsilon"]) > 0 or not float(norm["clip_obs"]) > 0:
        raise PolicySpecError(f"{path}: epsilon and clip_obs must be positive")
    return norm


def load_run(directory: str | Path, observation_space, action_space) -> TorchPolicy:
    directory = Path(directory)
    if not directory.is_dir():
        raise PolicySpecError(f"run:{directory}: not a directory")
    model, norm_path = run_files(directory)
    try:
        inner = sb3_victim(model, observation_space, action_space)
    except PolicyFileError as exc:
        raise PolicySpecError(str(exc)) from None
    if norm_path is None:
        return inner
    return NormalizedPolicy(inner, read_norm(norm_path, inner.observation_space))


class MaskedPolicy:
    """Gleave et al.'s masked victim: the opponent's part of the observation is frozen
    at its value at the start of the episode, so the victim cannot react to it.

    ``indices`` are the observation entries describing the opponent (declared by the
    game's ``EnvSpec.opponent_obs``). Works on any Policy; recurrent state passes through.
    """

    def __init__(self, inner: Policy, indices: tuple[int, ...]):
        self.inner = inner
        self.indices = np.asarray(indices, dtype=np.int64)
        self.frozen: np.ndarray | None = None
        self.observation_space = getattr(inner, "observation_space", None)
        self.action_space = getattr(inner, "action_space", None)

    def reset(self, *, seed: int | None = None) -> None:
        self.frozen = None
        reset = getattr(self.inner, "reset", None)
        if callable(reset):
            reset(seed=seed)

    def mask(self, observation: np.ndarray, episode_start: np.ndarray | None) -> np.ndarray:
        obs = np.array(observation, copy=True)
        flat = obs.reshape(obs.shape[0], -1)
        current = flat[:, self.indices]
        if self.frozen is None or len(self.frozen) != len(flat):
            self.frozen = current.copy()
        elif episode_start is not None:
            starts = np.asarray(episode_start, dtype=bool)
            self.frozen[starts] = current[starts]
        flat[:, self.indices] = self.frozen
        return flat.reshape(obs.shape)

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        observation = np.asarray(observation)
        single = (
            self.observation_space is not None and observation.shape == self.observation_space.shape
        )
        batch = observation[None] if single else observation
        start = None if episode_start is None else np.asarray(episode_start).reshape(-1)
        action, state = self.inner.predict(self.mask(batch, start), state, start, deterministic)
        return (action[0] if single else action), state


def _run(arg: str, observation_space, action_space, **context: Any) -> Policy:
    return load_run(arg, observation_space, action_space)


def _masked(arg: str, observation_space, action_space, **context: Any) -> Policy:
    import envs

    env_id, seat = context.get("env_id"), context.get("seat")
    if env_id is None or seat is None:
        raise PolicySpecError("masked:SPEC needs to know its game and seat")
    indices = envs.spec(env_id).opponent_obs.get(seat)
    if not indices:
        raise PolicySpecError(
            f"masked: {env_id} declares no opponent observation for seat "
            f"{seat!r}; maskable games: "
            f"{', '.join(s.id for s in envs.list_specs() if s.opponent_obs)}"
        )
    inner = resolve(arg, observation_space, action_space, **context)
    return MaskedPolicy(inner, tuple(indices))


def _mix(arg: str, observation_space, action_space, **context: Any) -> Policy:
    from agents.mixture import MixturePolicy
    from agents.specs import components

    parts = components(arg)
    policies = [resolve(s, observation_space, action_space, **context) for _, s in parts]
    try:
        return MixturePolicy(policies, [w for w, _ in parts])
    except ValueError as exc:
        raise PolicySpecError(f"mix:{arg}: {exc}") from None


register_kind(
    "run",
    _run,
    takes_path=True,
    help="a run directory of arena train-adversary",
    files=loaded_files,
)
register_kind(
    "masked",
    _masked,
    takes_path=False,
    takes_spec=True,
    help="masked:SPEC, SPEC seeing the opponent frozen at its start (e.g. masked:zoo:P)",
)
register_kind(
    "mix",
    _mix,
    takes_path=False,
    takes_spec=True,
    help="mix:W1*SPEC1|W2*SPEC2, one of them drawn per episode",
)
