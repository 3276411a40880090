"""``arena train-perturber``: train the director of the learned perturbation adversary
(``agents.attacks.learned``) against a frozen victim, and load it back as ``learned:DIR``.

The director's game (``PerturberEnv``): it sees the victim's observation, outputs a
direction, the actor turns it into a perturbation within ε, the victim acts on the
perturbed input (as it is scored: zoo agents sampled, others greedy) against its fixed
opponents, and the director's reward is minus the victim's. PPO (SB3) trains it in
``DIR`` with checkpoints; ``--resume`` continues a stopped run.

``DIR`` holds ``perturber_run.json`` (game, victim seat and spec, opponents, ε, norm,
actor steps, seed, budget), ``policy.zip`` + ``policy_norm.npz`` (the director, loaded
without unpickling, ``agents.sb3``), ``progress.csv`` and, while training,
``checkpoint.zip`` + ``checkpoint_norm.npz``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from agents.attacks import AttackSpecError, register_attack
from agents.attacks.base import InStdUnits, PerturbationBudget
from agents.attacks.learned import Learned, director_space, perturb_towards
from agents.policies import Policy, TorchPolicy
from arena.errors import ArenaError

MARKER = "perturber_run.json"
SCHEMA_VERSION = 1


class PerturberError(ArenaError):
    """A perturber run that cannot be trained or loaded (one line)."""


def _director_kwargs(observation_space: gym.spaces.Space) -> dict[str, Any]:
    """The director's network: SB3's MLP for state vectors, NatureCNN for frames of at
    least 36×36 pixels and ``agents.networks.SmallCNN`` for smaller ones."""
    kwargs: dict[str, Any] = {"log_std_init": math.log(0.5)}
    shape = observation_space.shape or ()
    if len(shape) == 3 and min(shape[1:]) < 36:
        from agents.networks import SmallCNN

        kwargs["features_extractor_class"] = SmallCNN
    return kwargs


class PerturberEnv(gym.Env):
    """The director's view of ``env_id``: the victim at ``seat`` attacked within
    ``budget`` towards the director's direction, its opponents frozen."""

    def __init__(
        self,
        env_id: str,
        seat: str,
        victim: str,
        opponents: Mapping[str, str],
        budget: PerturbationBudget,
        steps: int,
        *,
        deterministic: bool,
    ):
        from agents import specs
        from arena.embedding import VictimEmbeddedEnv

        super().__init__()
        self.game = VictimEmbeddedEnv(env_id, seat, dict(opponents))
        policy = specs.resolve(
            victim,
            self.game.observation_space,
            self.game.action_space,
            env_id=env_id,
            seat=seat,
        )
        if not isinstance(policy, TorchPolicy):
            raise PerturberError(
                f"the victim {victim} has no network to perturb through (zoo:, sb3:, atari:, run:)"
            )
        if policy.recurrent:
            raise PerturberError(
                f"the victim {victim} is recurrent: the actor needs a feed-forward victim"
            )
        scale = policy.input_scale()
        self.victim: TorchPolicy = InStdUnits(policy, scale) if scale is not None else policy
        self.budget, self.steps, self.deterministic = budget, steps, deterministic
        self.observation_space = self.game.observation_space
        self.action_space = director_space(self.game.action_space)
        self.generator = torch.Generator().manual_seed(0)
        self._obs: Any = None
        self._pending: Any = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self.generator.manual_seed(seed)
        self._obs, info = self.game.reset(seed=seed, options=options)
        return self._obs, info

    def victim_actions(self, observations: np.ndarray, directions: np.ndarray) -> np.ndarray:
        """The victim's actions on a batch of its observations, each perturbed towards
        the director's direction of the same row."""
        x = self.victim.input_from_obs(observations)
        x_adv = perturb_towards(
            self.victim,
            x,
            directions,
            budget=self.budget,
            steps=self.steps,
            generator=self.generator,
        )
        with torch.no_grad():
            dist, _ = self.victim.forward(x_adv)
            return self.victim.to_actions(self.victim.sample(dist, self.deterministic))

    def step(self, action):
        act, self._pending = self._pending, None  # computed with the batch (BatchedPerturbers)
        if act is None:
            act = self.victim_actions(np.asarray(self._obs)[None], np.asarray(action)[None])[0]
        self._obs, reward, term, trunc, info = self.game.step(act)
        info = dict(info)
        if "outcome" in info:  # the director wins what the victim loses
            info["outcome"] = {"win": "loss", "loss": "win"}.get(info["outcome"], "tie")
        return self._obs, -float(reward), term, trunc, info

    def close(self):
        self.game.close()


def batched_perturbers(thunks: list[Any]) -> Any:
    """SB3's ``DummyVecEnv`` of ``PerturberEnv``s whose actor runs once per step for the
    whole batch (one PGD on ``n`` rows instead of ``n`` PGDs on one): the same game,
    several times faster."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    class BatchedPerturbers(DummyVecEnv):
        def step_wait(self):
            games: list[PerturberEnv] = [e.unwrapped for e in self.envs]  # type: ignore[misc]
            first = games[0]
            observations = np.stack([np.asarray(g._obs) for g in games])
            acts = first.victim_actions(observations, np.asarray(self.actions))
            for game, act in zip(games, acts, strict=True):
                game._pending = act
            return super().step_wait()

    return BatchedPerturbers(thunks)


def read_marker(directory: Path) -> dict[str, Any]:
    """``perturber_run.json``, checked key by key (``PerturberError`` otherwise)."""
    from agents.attacks.params import NORMS
    from agents.numbers import parse_number, parse_seed
    from arena.artifacts.base import ArtifactError, is_int, read_json

    path = directory / MARKER
    if not path.is_file():
        raise PerturberError(f"{directory} is not a train-perturber run (no {MARKER})")
    try:  # capped in size; bad UTF-8, deep nesting, an integer of 5,000 digits: one line
        data = read_json(path)
    except ArtifactError as exc:
        raise PerturberError(str(exc)) from None
    want = {
        "schema_version",
        "env",
        "seat",
        "victim",
        "opponents",
        "eps",
        "norm",
        "steps",
        "seed",
        "timesteps",
    }
    if not isinstance(data, dict) or set(data) != want:
        raise PerturberError(f"{path}: must hold exactly the keys {', '.join(sorted(want))}")
    if not is_int(data["schema_version"]) or data["schema_version"] != SCHEMA_VERSION:
        raise PerturberError(
            f"{path}: schema_version {data['schema_version']!r} is not {SCHEMA_VERSION}"
        )
    texts = [data["env"], data["seat"], data["victim"], data["norm"]]
    opponents = data["opponents"]
    if not all(isinstance(t, str) for t in texts) or not (
        isinstance(opponents, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in opponents.items())
    ):
        raise PerturberError(
            f"{path}: env, seat, victim, norm must be text and opponents map seats to specs"
        )
    if data["norm"] not in NORMS:
        raise PerturberError(f"{path}: norm must be one of {', '.join(NORMS)}")
    try:
        data["eps"] = parse_number(data["eps"], "eps", low=0.0, high=1.0)
        data["steps"] = parse_number(data["steps"], "steps", low=1, high=1000, integer=True)
        data["seed"] = parse_seed(data["seed"])
        data["timesteps"] = parse_number(
            data["timesteps"], "timesteps", low=1, high=10**10, integer=True
        )
    except ValueError as exc:
        raise PerturberError(f"{path}: {exc}") from None
    return data


def _files(directory: Path) -> tuple[Path, Path]:
    """The director's policy and normalisation: the final ones, else the checkpoint's;
    both regular files inside ``directory`` (no link leading out). A policy without its
    normalisation is refused: the director would see raw observations."""
    from arena.artifacts.training_run import TrainingRunError, child_file

    for model, norm in (
        ("policy.zip", "policy_norm.npz"),
        ("checkpoint.zip", "checkpoint_norm.npz"),
    ):
        if not os.path.lexists(directory / model):
            continue
        try:
            paths = (
                child_file(directory, model, str(directory)),
                child_file(directory, norm, str(directory)),
            )
        except TrainingRunError as exc:
            raise PerturberError(str(exc)) from None
        for path in paths:
            if not path.is_file():
                why = "is not a regular file" if os.path.lexists(path) else "is missing"
                raise PerturberError(f"{path} {why}; a director is {model} with {norm}")
        return paths
    raise PerturberError(f"{directory}: no director yet (no policy.zip, no checkpoint.zip)")


def load_director(directory: Path) -> tuple[Policy, dict[str, Any]]:
    """The director of a run (its final policy, else its checkpoint) and its marker."""
    from arena.players import load_trained

    marker = read_marker(directory)
    model, norm = _files(directory)
    import envs

    try:
        envs.spec(marker["env"]).check_seat(marker["seat"])
        game = envs.make(marker["env"])
        obs_space = game.observation_space(marker["seat"])
        act_space = director_space(game.action_space(marker["seat"]))
        game.close()
    except (ValueError, KeyError, TypeError) as exc:
        raise PerturberError(f"{directory}: its game and seat do not make a game: {exc}") from None
    return load_trained(model, norm, obs_space, act_space), marker


def _make_learned(
    directory: Any = None, eps: Any = None, steps: Any = None, **extra: Any
) -> Learned:
    """``learned:DIR[,eps=..,steps=..]``."""
    from agents.attacks.params import budget_from, parse_steps

    if extra:
        raise AttackSpecError(
            f"learned: unknown parameter {sorted(extra)[0]!r}; valid: DIR, eps, steps"
        )
    if directory is None:
        raise AttackSpecError("learned:DIR needs the run directory of `arena train-perturber`")
    try:
        director, marker = load_director(Path(str(directory)))
    except PerturberError as exc:
        raise AttackSpecError(str(exc)) from None
    budget = budget_from(marker["eps"] if eps is None else eps, marker["norm"])
    n = marker["steps"] if steps is None else parse_steps(steps)
    return Learned(
        budget,
        director,
        steps=n,
        source=f"learned:{directory}",
        game=(marker["env"], marker["seat"]),
    )


_make_learned.positional = "directory"  # type: ignore[attr-defined]
register_attack(
    "learned",
    _make_learned,
    "the learned perturbation adversary of `arena train-perturber`: learned:DIR",
)


def train_perturber(
    env_id: str,
    seat: str,
    victim: str,
    opponents: Mapping[str, str],
    *,
    eps: float,
    norm: str = "linf",
    steps: int = 10,
    timesteps: int | None,
    out: str | Path,
    seed: int = 0,
    n_envs: int = 8,
    resume: bool = False,
    checkpoint_every: int = 20_000,
) -> dict[str, Any]:
    """Train the director into ``out`` (new, or ``resume``: from its checkpoint, up to
    ``timesteps``; ``None``: the run's own budget)."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecMonitor, VecNormalize

    from arena.artifacts.training_run import NormStats
    from arena.io import try_lock, write_json_atomic
    from arena.match import check_seats
    from arena.players import samples_by_default
    from arena.training_run import save_atomic

    out = Path(out)
    old = read_marker(out) if resume else None
    if timesteps is None:
        if old is None:
            raise PerturberError("give the budget: --timesteps N (a new run has none on record)")
        timesteps = int(old["timesteps"])
    marker = {
        "schema_version": SCHEMA_VERSION,
        "env": env_id,
        "seat": seat,
        "victim": victim,
        "opponents": dict(opponents),
        "eps": float(eps),
        "norm": norm,
        "steps": int(steps),
        "seed": int(seed),
        "timesteps": int(timesteps),
    }
    if old is not None:
        mine = {k: v for k, v in old.items() if k != "timesteps"}
        if mine != {k: v for k, v in marker.items() if k != "timesteps"}:
            raise PerturberError(
                f"--resume {out}: the run trains another recipe ({old['env']}, "
                f"{old['victim']}, eps {old['eps']:g})"
            )
    elif out.exists() and not (out.is_dir() and {p.name for p in out.iterdir()} <= {".lock"}):
        raise PerturberError(f"--out {out} exists; give a new directory or --resume")
    check_seats(env_id, {**opponents, seat: victim})
    budget = PerturbationBudget(eps=float(eps), norm=norm)  # type: ignore[arg-type]
    deterministic = not samples_by_default(victim)

    def make(rank: int):
        def thunk():
            return PerturberEnv(
                env_id, seat, victim, opponents, budget, steps, deterministic=deterministic
            )

        return thunk

    first = make(0)()  # refuses a victim it cannot perturb before anything is written
    first.close()
    out.mkdir(parents=True, exist_ok=True)
    lock = try_lock(out / ".lock")
    if lock is None:
        raise PerturberError(f"{out} is being trained by another process")
    try:
        vector = len(first.observation_space.shape or ()) == 1
        venv = VecNormalize(
            VecMonitor(batched_perturbers([make(i) for i in range(n_envs)])),
            norm_obs=vector,
            norm_reward=True,
        )
        venv.seed(seed)
        model = PPO(
            "MlpPolicy" if vector else "CnnPolicy",
            venv,
            n_steps=max(16, 2048 // n_envs),
            batch_size=256,
            n_epochs=10,
            learning_rate=3e-4,
            policy_kwargs=_director_kwargs(first.observation_space),
            seed=seed,
            device="cpu",
            verbose=0,
        )
        done = 0
        ckpt, ckpt_norm = out / "checkpoint.zip", out / "checkpoint_norm.npz"
        if resume and ckpt.is_file():  # checked whole before anything is written
            done = _resume_from(model, venv, out)
            model.num_timesteps = done
        write_json_atomic(out / MARKER, marker)
        rows: list[str] = []
        while done < timesteps:
            chunk = min(checkpoint_every, timesteps - done)
            model.learn(chunk, reset_num_timesteps=False, progress_bar=False)
            done = int(model.num_timesteps)
            save_atomic(model, ckpt)
            NormStats.of(venv).write(ckpt_norm)
            write_json_atomic(out / "checkpoint.json", {"timesteps": done})
            episodes = [e["r"] for e in (model.ep_info_buffer or ())]
            rows.append(f"{done},{np.mean(episodes) if episodes else float('nan'):.4f}\n")
            with open(out / "progress.csv", "a", encoding="utf-8") as fh:
                if fh.tell() == 0:
                    fh.write("timesteps,director_return\n")
                fh.write(rows[-1])
        save_atomic(model, out / "policy.zip", keep_optimizer=False)
        NormStats.of(venv).write(out / "policy_norm.npz")
        venv.close()
        results = {"timesteps": done, "director": f"learned:{out}"}
        write_json_atomic(out / "results.json", results)
    finally:
        os.close(lock)
    return results


def _resume_from(model: Any, venv: Any, out: Path) -> int:
    """Load the checkpoint of the run in ``out`` into ``model`` and ``venv``: its steps
    so far. A checkpoint that is unreadable or does not fit is one ``PerturberError``."""
    from agents.sb3 import PolicyFileError, read_sb3_parameters
    from arena.artifacts.base import ArtifactError, described, integer, read_json
    from arena.artifacts.training_run import NormStats

    ckpt, state_file = out / "checkpoint.zip", out / "checkpoint.json"
    try:
        state = read_json(state_file)
        if not isinstance(state, dict):
            raise ArtifactError(f"{state_file} must be an object, not {described(state)}")
        done = integer(state, "timesteps", str(state_file), ArtifactError)
        stats = NormStats.read(out / "checkpoint_norm.npz", venv.observation_space.shape)
        model.set_parameters(read_sb3_parameters(ckpt), exact_match=True, device="cpu")
        stats.apply(venv)
    except (ArtifactError, PolicyFileError) as exc:
        raise PerturberError(f"--resume {out}: {exc}") from None
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:
        message = " ".join(str(exc).split())[:200]
        raise PerturberError(f"--resume {out}: {ckpt} does not fit this run: {message}") from None
    return done
