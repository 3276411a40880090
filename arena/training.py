"""Training a seat with Stable-Baselines3 PPO against frozen policies in the other seats.

The same machinery trains a toy victim against a fixed opponent and, later, an
adversary against a frozen victim: ``VictimEmbeddedEnv`` hides the frozen seats.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agents.numbers import parse_number, parse_seed
from agents.policies import Policy
from arena.errors import MAX_ENVS, MAX_TIMESTEPS, ArenaError, max_workers
from arena.io import atomic_path

log = logging.getLogger(__name__)


class TrainingError(ArenaError):
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
    with atomic_path(path) as tmp:
        model.save(tmp)
        if not keep_optimizer:
            _drop_members(tmp, {"policy.optimizer.pth"})


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
    timesteps = parse_number(
        timesteps, "timesteps", low=1, high=MAX_TIMESTEPS, integer=True, error=TrainingError
    )
    seed = parse_seed(seed, error=TrainingError)
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


# --------------------------------------------------------------------- adversaries


@dataclass(frozen=True)
class AdversaryConfig:
    """How an adversary is trained (Gleave et al. 2020, scaled for a small machine).

    The paper: PPO, batch 16,384, lr 3e-4, entropy 0, 4 minibatches, 4 epochs,
    observation and reward normalisation, sparse win/loss reward with an optional
    dense shaping term annealed to zero. ``default_adversary_config`` keeps those
    ratios; toy games get a small batch.
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
    (``arena.embedding.action_distance``) between the victim's action distribution and
    the one it would have with the opponent's part of its observation frozen at the
    episode's start."""
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

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["ppo"] = self.ppo.to_json()
        return out

    @classmethod
    def from_json(cls, data: Any, where: str = "config") -> AdversaryConfig:
        """The configuration a run saved, checked key by key (``TrainingError``)."""
        fields = _checked_fields(cls, data, where)
        fields["ppo"] = PPOConfig(**_checked_fields(PPOConfig, fields.get("ppo"), f"{where}.ppo"))
        return cls(**fields)


def _checked_fields(cls: type, data: Any, where: str) -> dict[str, Any]:
    """``data`` as keyword arguments of the dataclass ``cls``: a JSON object whose keys
    are its fields (all those without a default present), each of the field's type."""
    import typing

    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if not isinstance(data, dict):
        raise TrainingError(f"{where} must be a JSON object, not {_kind(data)}")
    for key in data:
        if key not in fields:
            raise TrainingError(f"{where}: unknown key {key!r}; valid keys: {', '.join(fields)}")
    for name, f in fields.items():
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required and name not in data:
            raise TrainingError(f"{where}: missing key {name!r}")
    out = dict(data)
    for key, value in data.items():
        hint = hints[key]
        origin = typing.get_origin(hint) or hint
        if hint is float:  # a finite number (parse_number)
            out[key] = parse_number(value, f"{where}.{key}", error=TrainingError)
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
            raise TrainingError(f"{where}: {key!r} must be {want}, not {_kind(value)}")
    return out


PAPER_PPO = PPOConfig(
    n_envs=8,
    n_steps=2048,
    batch_size=4096,
    n_epochs=4,
    learning_rate=3e-4,
    ent_coef=0.0,
    net_arch=(64, 64),
)


def default_adversary_config(
    env_id: str, *, n_envs: int | None = None, workers: int | None = None
) -> AdversaryConfig:
    import envs

    spec = envs.spec(env_id)
    if not spec.needs:  # toy games: small batches, seconds per update
        ppo = PPOConfig(n_envs=8, n_steps=256, batch_size=512, n_epochs=10, learning_rate=1e-3)
        config = AdversaryConfig(ppo=ppo, checkpoint_every=20_000)
    else:
        # the competition games: pure ±1000 goal reward in the env, plus two dense
        # potential-based terms annealed to 0 over the first half: (c) the game's
        # info-only shaping (e.g. the runner's distance from its goal) and (a) the
        # victim's own value estimate. The best of the reward study at equal budget
        # (400k steps against the zoo runner: runner win rate 0.91 vs 0.93-0.98 for
        # sparse, (a), (b) or (c) alone; `arena run gleave2020 --reward-study`).
        # Physics in 2 worker processes, 32 envs (n_steps 512: the paper's batch of
        # 16,384), the PPO update on 2 threads while the workers idle: 2,184 env steps/s
        # against 1,549 in one process (benchmarks/adversary_throughput.py, idle 2 cores).
        config = AdversaryConfig(
            ppo=dataclasses.replace(PAPER_PPO, n_envs=32, n_steps=512),
            workers=2,
            update_threads=2,
            shaping=100.0,
            shaping_key="reward_shaping",
            shaping_potential=True,
            victim_value=200.0,
            victim_sampled=True,
            env_kwargs={"shaping": 0.0},
        )
    if workers is not None:
        workers = parse_number(
            workers, "--workers", low=0, high=max_workers(), integer=True, error=TrainingError
        )
        config = dataclasses.replace(config, workers=workers, update_threads=2 if workers else 1)
    if n_envs is not None:
        n_envs = parse_number(
            n_envs, "--envs", low=1, high=MAX_ENVS, integer=True, error=TrainingError
        )
        batch = config.ppo.n_envs * config.ppo.n_steps
        ppo = dataclasses.replace(config.ppo, n_envs=n_envs, n_steps=max(1, batch // n_envs))
        config = dataclasses.replace(config, ppo=ppo)
    return config


class RunLock:
    """An exclusive ``flock`` on ``DIR/.lock``: one training per run directory."""

    def __init__(self, directory: Path):
        import fcntl

        self.path = directory / ".lock"
        self.fh = open(self.path, "a+")  # noqa: SIM115 - held for the run's lifetime
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.fh.seek(0)
            owner = self.fh.read().strip() or "another process"
            self.fh.close()
            raise TrainingError(
                f"run directory {directory} is in use by another training (pid {owner})"
            ) from None
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(str(os.getpid()))
        self.fh.flush()

    def release(self) -> None:
        self.fh.close()


def save_normalization(vec_normalize: Any, path: Path) -> None:
    """VecNormalize statistics as plain arrays (no pickle), written atomically."""
    obs_rms = getattr(vec_normalize, "obs_rms", None) if vec_normalize.norm_obs else None
    shape = vec_normalize.observation_space.shape
    arrays: dict[str, Any] = {
        "obs_mean": obs_rms.mean if obs_rms is not None else np.zeros(shape),
        "obs_var": obs_rms.var if obs_rms is not None else np.ones(shape),
        "obs_count": np.asarray(obs_rms.count if obs_rms is not None else 0.0),
        "ret_mean": np.asarray(vec_normalize.ret_rms.mean),
        "ret_var": np.asarray(vec_normalize.ret_rms.var),
        "ret_count": np.asarray(vec_normalize.ret_rms.count),
        "clip_obs": np.asarray(vec_normalize.clip_obs),
        "epsilon": np.asarray(vec_normalize.epsilon),
        "norm_obs": np.asarray(vec_normalize.norm_obs),
    }
    with atomic_path(path) as tmp:
        np.savez(tmp, **arrays)


def _set_parameters(model: Any, path: Path, *, exact: bool) -> None:
    """Load the SB3 file's torch state into ``model``, read without unpickling."""
    from agents.sb3 import PolicyFileError, read_sb3_parameters

    try:
        params = read_sb3_parameters(path)
        if not exact:
            params = {"policy": params["policy"]}
        model.set_parameters(params, exact_match=exact, device="cpu")
    except PolicyFileError as exc:
        raise TrainingError(str(exc)) from None
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:
        message = " ".join(str(exc).split())[:200]
        raise TrainingError(f"{path}: weights do not fit this training: {message}") from None


def _checkpoint(out: Path) -> tuple[Path, Path, int]:
    """The latest checkpoint's files (confined to ``checkpoints/``) and its timestep."""
    from agents.runs import checkpoint_files
    from agents.specs import PolicySpecError

    try:
        model, norm, state = checkpoint_files(out)
    except PolicySpecError as exc:
        raise TrainingError(f"cannot resume {out}: {exc}") from None
    steps = state.get("timesteps")
    if type(steps) is not int or steps < 0:
        raise TrainingError(f"cannot resume {out}: checkpoint timesteps must be an integer >= 0")
    return model, norm, steps


def load_normalization(vec_normalize: Any, path: Path) -> None:
    try:
        _load_normalization(vec_normalize, path)
    except Exception as exc:  # zipfile, numpy, key and shape errors of a corrupt file
        message = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
        raise TrainingError(f"{path}: unreadable normalisation: {message}") from None


def _load_normalization(vec_normalize: Any, path: Path) -> None:
    from agents.npz import read_npz

    data = read_npz(path)
    if vec_normalize.norm_obs and bool(data["norm_obs"]):
        vec_normalize.obs_rms.mean = data["obs_mean"]
        vec_normalize.obs_rms.var = data["obs_var"]
        vec_normalize.obs_rms.count = float(data["obs_count"])
        vec_normalize.clip_obs = float(data["clip_obs"])
        vec_normalize.epsilon = float(data["epsilon"])
    vec_normalize.ret_rms.mean = data["ret_mean"]
    vec_normalize.ret_rms.var = data["ret_var"]
    vec_normalize.ret_rms.count = float(data["ret_count"])


RUN_MARKER = "adversary_run.json"
_MARKER_TYPES: dict[str, tuple[Any, str]] = {
    "env": (str, "text"),
    "victims": (dict, "an object"),
    "victim_refs": (dict, "an object"),
    "adversary_seat": (str, "text"),
    "seed": (None, "a seed"),  # parse_number's range
    "timesteps": (None, "a number of steps"),
    "config": (dict, "an object"),
    "init": ((str, type(None)), "text or null"),
}
_MARKER_REQUIRED = ("env", "victims", "seed", "config")


def read_run_marker(out: Path) -> dict[str, Any]:
    """``out/adversary_run.json``, checked: a JSON object with the known keys, each of
    its type (else ``TrainingError``, naming the file and the valid keys)."""
    import json

    path = out / RUN_MARKER
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: bad JSON or UTF-8
        message = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
        raise TrainingError(f"--resume: {path} is not readable JSON: {message}") from None
    if not isinstance(data, dict):
        raise TrainingError(f"--resume: {path} must hold a JSON object, not {_kind(data)}")
    valid = ", ".join(_MARKER_TYPES)
    unknown = sorted(set(data) - set(_MARKER_TYPES))
    if unknown:
        raise TrainingError(f"--resume: {path}: unknown key {unknown[0]!r}; valid keys: {valid}")
    missing = [k for k in _MARKER_REQUIRED if k not in data]
    if missing:
        raise TrainingError(f"--resume: {path}: missing key {missing[0]!r}; valid keys: {valid}")
    for key, value in data.items():
        kind, words = _MARKER_TYPES[key]
        if kind is not None and (isinstance(value, bool) or not isinstance(value, kind)):
            raise TrainingError(f"--resume: {path}: {key!r} must be {words}, not {_kind(value)}")
    victims = data["victims"]
    if not victims or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in victims.items()
    ):
        raise TrainingError(f"--resume: {path}: 'victims' must map seats to policy specs")
    try:
        data["seed"] = parse_seed(data["seed"], "seed")
        if "timesteps" in data:
            parse_number(data["timesteps"], "timesteps", low=1, high=MAX_TIMESTEPS, integer=True)
    except ValueError as exc:
        raise TrainingError(f"--resume: {path}: {exc}") from None
    return data


def _kind(value: Any) -> str:
    """A JSON value's kind in words: ``an object``, ``a list``, ``a string``, ``int``..."""
    names = {"dict": "an object", "list": "a list", "str": "a string", "NoneType": "null"}
    return names.get(type(value).__name__, type(value).__name__)


def _discard(out: Path, created: bool) -> None:
    """Remove what a failed new run wrote: ``out`` itself if this run made it."""
    import shutil

    if created:
        shutil.rmtree(out, ignore_errors=True)
        return
    for child in out.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def is_training_run(directory: Path) -> bool:
    return (directory / RUN_MARKER).is_file()


def train_adversary(
    env_id: str,
    victims: Mapping[str, str],
    *,
    timesteps: int,
    out: str | Path,
    seed: int = 0,
    config: AdversaryConfig | None = None,
    resume: bool = False,
    adversary_seat: str | None = None,
    progress: bool = True,
    init: str | None = None,
) -> dict[str, Any]:
    """Train the free seat of ``env_id`` with PPO against frozen ``victims``.

    Writes into ``out``: ``adversary_run.json`` (the resolved configuration),
    ``metadata.json``, ``checkpoints/`` (every ``checkpoint_every`` steps, atomic),
    ``progress.csv`` (timesteps, rolling win rate, steps/s), ``tb/`` (TensorBoard),
    and at the end ``policy.zip`` + ``policy_norm.npz`` + ``results.json``.
    The result loads as the policy spec ``run:OUT``. Returns the results dict.

    ``init`` (a ``sb3:`` or ``run:`` spec) starts the learner from existing weights and
    normalisation instead of from scratch: that is how a victim is fine-tuned.
    """
    import json
    import time

    import envs
    from agents import specs as policy_specs
    from arena.io import write_json_atomic
    from arena.rundir import run_metadata

    timesteps = parse_number(
        timesteps, "timesteps", low=1, high=MAX_TIMESTEPS, integer=True, error=TrainingError
    )
    seed = parse_seed(seed, error=TrainingError)
    spec = envs.spec(env_id)
    if not victims:
        raise TrainingError(
            f"give the victim: --victim SEAT=SPEC with SEAT one of {', '.join(spec.seats)}"
        )
    for seat in victims:
        spec.check_seat(seat)
    free = [s for s in spec.seats if s not in victims]
    if adversary_seat is None:
        if len(free) != 1:
            raise TrainingError(
                f"{env_id} has seats {', '.join(spec.seats)}: victims must "
                f"fill all but one (the adversary's)"
            )
        adversary_seat = free[0]
    spec.check_seat(adversary_seat)
    refs = {seat: policy_specs.reference(s).to_json() for seat, s in victims.items()}
    out = Path(out)

    if resume:
        if not out.is_dir() or not is_training_run(out):
            raise TrainingError(
                f"--resume: {out} is not an adversary training run (no {RUN_MARKER})"
            )
        saved = read_run_marker(out)
        if saved["env"] != env_id or saved["victims"] != dict(victims):
            raise TrainingError(
                f"--resume: {out} trains {saved['env']} against "
                f"{saved['victims']}, not {env_id} against {dict(victims)}"
            )
        config = AdversaryConfig.from_json(saved["config"], where=f"{out / RUN_MARKER}: config")
        seed = saved["seed"]
        created = False
    else:
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise TrainingError(
                f"{out} already exists; use --resume to continue it or choose a new --out"
            )
        config = config or default_adversary_config(env_id)
        if init is not None and init.partition(":")[0] == "sb3":
            # the initial policy was trained on raw observations: keep them raw
            config = AdversaryConfig(**{**config.__dict__, "norm_obs": False})
        created = not out.exists()
        out.mkdir(parents=True, exist_ok=True)
    lock = RunLock(out)
    failed = True
    try:
        results = _train(
            env_id,
            victims,
            adversary_seat,
            refs,
            timesteps,
            out,
            seed,
            config,
            resume,
            progress,
            write_json_atomic,
            run_metadata,
            time,
            json,
            init,
        )
        failed = False
        return results
    finally:
        lock.release()
        if failed and not resume and not (out / "checkpoints" / "state.json").is_file():
            # a new run that failed before its first checkpoint: nothing to resume,
            # so leave nothing behind (an interrupt included)
            _discard(out, created)


PROGRESS_HEADER = "timesteps,win_rate,episodes,steps_per_s,shaping\n"


def trim_progress(path: Path, timesteps: int) -> None:
    """Keep the rows of ``progress.csv`` logged up to the checkpoint a run resumes
    from (``timesteps``): the rows after it were logged by steps that are replayed
    now, and would repeat. A row cut short by the kill goes too. Written atomically."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    kept = [PROGRESS_HEADER.rstrip("\n")]
    width = PROGRESS_HEADER.count(",") + 1
    for line in lines[1:]:
        cells = line.split(",")
        if len(cells) != width or not cells[0].isdigit():
            continue
        if int(cells[0]) <= timesteps:
            kept.append(line)
    text = "\n".join(kept) + "\n"
    if text != "\n".join(lines) + "\n":
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")


def _init_files(
    init: str, env_id: str | None = None, seat: str | None = None, out: Path | None = None
) -> tuple[Path, Path | None]:
    """The SB3 file and normalisation stats behind an ``sb3:``, ``run:`` or ``zoo:`` spec
    (an MLP zoo policy is exported to ``out/init/`` first)."""
    kind, _, arg = init.partition(":")
    if kind == "sb3":
        return Path(arg), None
    if kind == "run":
        from agents.runs import run_files

        return run_files(Path(arg))
    if kind == "zoo" and env_id is not None and seat is not None and out is not None:
        import envs
        from agents.zoo import ZooError, export_sb3, load_zoo_policy

        env = envs.make(env_id)
        policy = load_zoo_policy(arg, env.observation_space(seat), env.action_space(seat))
        try:
            return export_sb3(policy, out / "init")
        except ZooError as exc:
            raise TrainingError(f"cannot fine-tune {init}: {exc}") from None
    raise TrainingError(
        f"can only fine-tune sb3:PATH, run:DIR or (MLP) zoo:PATH policies, not {init!r}"
    )


def _train(
    env_id,
    victims,
    seat,
    refs,
    timesteps,
    out,
    seed,
    config,
    resume,
    progress,
    write_json_atomic,
    run_metadata,
    time,
    json,
    init=None,
):
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import VecNormalize

    from arena.embedding import EmbeddedVecEnv

    ckpt_dir = out / "checkpoints"
    ckpt_dir.mkdir(exist_ok=True)
    if not resume:
        write_json_atomic(
            out / RUN_MARKER,
            {
                "env": env_id,
                "victims": dict(victims),
                "victim_refs": refs,
                "adversary_seat": seat,
                "seed": seed,
                "timesteps": timesteps,
                "config": config.to_json(),
                "init": init,
            },
        )
        write_json_atomic(out / "metadata.json", run_metadata())
    ppo = config.ppo
    venv = EmbeddedVecEnv(
        env_id,
        seat,
        victims,
        n_envs=ppo.n_envs,
        workers=config.workers,
        seed=seed * 1000,
        shaping=config.shaping,
        shaping_key=config.shaping_key,
        shaping_potential=config.shaping_potential,
        victim_value=config.victim_value,
        victim_divergence=config.victim_divergence,
        gamma=ppo.gamma,
        env_kwargs=config.env_kwargs,
        deterministic=not config.victim_sampled,
    )
    venv = VecNormalize(
        venv, norm_obs=config.norm_obs, norm_reward=config.norm_reward, gamma=ppo.gamma
    )

    class _PPO(PPO):
        def train(self) -> None:
            import torch

            before = torch.get_num_threads()
            torch.set_num_threads(max(1, config.update_threads))
            try:
                super().train()
            finally:
                torch.set_num_threads(before)

    model = _PPO(
        "MlpPolicy",
        venv,
        n_steps=ppo.n_steps,
        batch_size=ppo.batch_size,
        n_epochs=ppo.n_epochs,
        learning_rate=ppo.learning_rate,
        ent_coef=ppo.ent_coef,
        gamma=ppo.gamma,
        policy_kwargs={"net_arch": list(ppo.net_arch)},
        seed=seed,
        verbose=0,
        device="cpu",
        tensorboard_log=str(out / "tb"),
        **ppo.extra,
    )
    done = 0
    state_path = ckpt_dir / "state.json"
    if init is not None and not (resume and state_path.is_file()):
        model_path, norm_path = _init_files(init, env_id, seat, out)
        _set_parameters(model, model_path, exact=False)
        if norm_path is not None:
            load_normalization(venv, norm_path)
    if resume and state_path.is_file():
        model_file, norm_file, done = _checkpoint(out)
        _set_parameters(model, model_file, exact=True)
        load_normalization(venv, norm_file)
        model.num_timesteps = done
    remaining = timesteps - done
    progress_path = out / "progress.csv"
    if not progress_path.exists():
        progress_path.write_text(PROGRESS_HEADER)
    elif resume:
        trim_progress(progress_path, done)

    class Tracker(BaseCallback):
        def _on_training_start(self) -> None:
            from tqdm import tqdm

            self.outcomes: list[float] = []
            self.episodes = 0
            self.t0 = time.perf_counter()
            self.start_steps = self.num_timesteps
            self.last_ckpt = self.num_timesteps
            self.bar = tqdm(
                total=timesteps,
                initial=self.num_timesteps,
                unit="step",
                desc=f"adversary {env_id}:{seat}",
                disable=None if progress else True,
                leave=False,
            )

        def _rate(self) -> float:
            return (self.num_timesteps - self.start_steps) / max(
                1e-9, time.perf_counter() - self.t0
            )

        def _on_step(self) -> bool:
            self.bar.update(self.training_env.num_envs)
            for info in self.locals.get("infos", ()):
                if "outcome" in info:
                    self.episodes += 1
                    self.outcomes = [*self.outcomes[-199:], float(info["outcome"] == "win")]
            if config.shaping or config.victim_value or config.victim_divergence:
                frac = min(1.0, self.num_timesteps / max(1.0, config.anneal_fraction * timesteps))
                for term in ("shaping", "victim_value", "victim_divergence"):
                    self.training_env.set_attr(term, getattr(config, term) * (1.0 - frac))
            if self.num_timesteps - self.last_ckpt >= config.checkpoint_every:
                self.last_ckpt = self.num_timesteps
                checkpoint(self.model, self.num_timesteps)
            return True

        def _on_rollout_end(self) -> None:
            win = float(np.mean(self.outcomes)) if self.outcomes else float("nan")
            self.logger.record("arena/win_rate", win)
            self.bar.set_postfix(win=f"{win:.2f}", sps=f"{self._rate():.0f}")
            shaping = venv.venv.shaping
            with open(progress_path, "a") as fh:
                fh.write(
                    f"{self.num_timesteps},{win:.4f},{self.episodes},"
                    f"{self._rate():.1f},{shaping:.4f}\n"
                )

        def _on_training_end(self) -> None:
            self.bar.close()

    def checkpoint(model: Any, steps: int) -> None:
        name = f"step_{steps:010d}"
        save_atomic(model, ckpt_dir / f"{name}.zip")
        save_normalization(venv, ckpt_dir / f"{name}_norm.npz")
        write_json_atomic(
            state_path, {"timesteps": steps, "model": f"{name}.zip", "norm": f"{name}_norm.npz"}
        )
        for old in ckpt_dir.glob("step_*"):
            if not old.name.startswith(name):
                old.unlink(missing_ok=True)

    tracker = Tracker()
    t0 = time.perf_counter()
    if remaining > 0:
        model.learn(
            remaining,
            callback=tracker,
            reset_num_timesteps=not resume or done == 0,
            tb_log_name="ppo",
        )
        checkpoint(model, model.num_timesteps)
    elapsed = time.perf_counter() - t0
    save_atomic(model, out / "policy.zip", keep_optimizer=False)
    save_normalization(venv, out / "policy_norm.npz")
    venv.close()
    outcomes = getattr(tracker, "outcomes", [])
    results = {
        "env": env_id,
        "adversary_seat": seat,
        "victims": dict(victims),
        "timesteps": int(model.num_timesteps),
        "seconds_this_session": round(elapsed, 1),
        "steps_per_s_this_session": round((model.num_timesteps - done) / max(elapsed, 1e-9), 1),
        "rolling_win_rate": float(np.mean(outcomes)) if outcomes else None,
    }
    write_json_atomic(out / "results.json", results)
    return results
