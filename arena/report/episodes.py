"""Episodes on the page: a video of a record's first episode, and, for a run that
wrote no record, one sample episode played from its ``SampleRecipe`` and recorded.

``video`` is the one place that calls ``arena.video``; a sample's record lies in the
page's temporary directory and is removed once its video is made. A sample is played
only if what it loads lies inside the reported directory or the shared data
directories (``arena.report.confine``), and for at most ``step_cap`` steps.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arena.artifacts import SampleRecipe
from arena.artifacts.run_fields import brief
from arena.errors import ArenaError
from arena.report import confine
from arena.report.media import Clip, PageFiles

MAX_VIDEOS = 8
MAX_SAMPLE_STEPS = 10_000
"""A sample is dropped past this many steps (or past its game's own default limit, if
that is longer)."""


class SampleError(ArenaError):
    """A sample episode not played (it loads a file from elsewhere) or dropped (too long)."""


def step_cap(env: str) -> int:
    """The steps a sample of ``env`` may take: ``MAX_SAMPLE_STEPS``, or the game's own
    default limit if that is longer (never more than a record holds)."""
    import envs
    from arena.recording import MAX_EPISODE_STEPS

    limit = envs.spec(env).max_episode_steps or 0
    return min(max(limit, MAX_SAMPLE_STEPS), MAX_EPISODE_STEPS)


class _Steps:
    """Counts the steps of a sample; past ``cap`` the episode is dropped."""

    def __init__(self, cap: int, recipe: SampleRecipe):
        self.cap, self.count, self.recipe = cap, 0, recipe

    def tick(self) -> None:
        self.count += 1
        if self.count > self.cap:
            kwargs = brief(self.recipe.env_kwargs, 100, as_json=True)
            raise SampleError(
                f"the episode ran past {self.cap:,} steps (env_kwargs {kwargs}); dropped"
            )


class _CountedPolicy:
    """A policy that counts its calls (one a step); anything else is the policy's."""

    def __init__(self, policy: Any, steps: _Steps):
        self._policy, self._steps = policy, steps

    def predict(self, *args: Any, **kwargs: Any) -> Any:
        self._steps.tick()
        return self._policy.predict(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._policy, name)


class _CountedAttack:
    """An attack that counts its steps; anything else is the attack's."""

    def __init__(self, attack: Any, steps: _Steps):
        self._attack, self._steps = attack, steps

    def step(self, *args: Any, **kwargs: Any) -> Any:
        self._steps.tick()
        return self._attack.step(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._attack, name)


def _counted(recipe: SampleRecipe, cap: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The recipe's policies and attacks for ``run_match``, one seat's counting the
    steps (its attack if it is attacked, else its policy, loaded here)."""
    import envs
    from agents import specs
    from arena.attacks import build_attack

    steps = _Steps(cap, recipe)
    policies: dict[str, Any] = dict(recipe.policies)
    attacks: dict[str, Any] = dict(recipe.attacks)
    if attacks:
        seat = next(iter(attacks))
        attacks[seat] = _CountedAttack(build_attack(attacks[seat]), steps)
        return policies, attacks
    seat = next(iter(policies))
    game = envs.make(recipe.env, **recipe.env_kwargs)
    try:
        policy = specs.resolve(
            policies[seat],
            game.observation_space(seat),
            game.action_space(seat),
            env_id=recipe.env,
            seat=seat,
        )
    finally:
        game.close()
    policies[seat] = _CountedPolicy(policy, steps)
    return policies, attacks


@dataclass(frozen=True)
class Episode:
    """A record to show, and what to call it."""

    record: Path
    label: str
    where: str = ""
    """The run it belongs to, for notes."""
    played: bool = False
    """A sample played for the page (its record is removed after use)."""


def play_sample(recipe: SampleRecipe, files: PageFiles, stem: str, where: str) -> Episode:
    """Play and record one episode of ``recipe`` in the page's directory: refused
    (``SampleError``) if it loads a file from elsewhere than the reported directory
    and the data directories, dropped past ``step_cap`` steps."""
    from arena.match import run_match
    from arena.recording import match_manifest, write_record

    why = confine.problem(recipe, files.root)
    if why is not None:
        raise SampleError(why)
    policies, attacks = _counted(recipe, step_cap(recipe.env))
    _, records = run_match(
        recipe.env,
        policies,
        n_episodes=1,
        seed=recipe.seed,
        attacks=attacks or None,
        env_kwargs=dict(recipe.env_kwargs),
        deterministic=recipe.deterministic,
        record=True,
    )
    manifest = match_manifest(
        recipe.env,
        dict(recipe.policies),
        seed=recipe.seed,
        attacks=dict(recipe.attacks),
        env_kwargs=dict(recipe.env_kwargs),
        deterministic=recipe.deterministic,
    )
    record = write_record(files.name(f"sample_{stem}", ""), manifest, records)
    what = recipe.label or "its policies"
    label = f"sample episode played for this report (seed {recipe.seed}): {what}"
    return Episode(record, label, where, played=True)


def video(episode: Episode, files: PageFiles) -> Clip | None:
    """The first episode of ``episode.record``, re-simulated and verified into an mp4;
    None (and a note saying why) if it cannot be made."""
    from arena.video import episode_video

    path = files.name(f"{episode.record.name}_ep0", ".mp4")
    try:
        made = episode_video(episode.record, path, episode=0)
    except Exception as exc:  # one bad record must not sink the whole page
        files.notes.append(f"{_named(episode)}: no video ({why(exc)})")
        return None
    finally:
        if episode.played:
            shutil.rmtree(episode.record, ignore_errors=True)
    files.notes += [f"{_named(episode)}: {n}" for n in made.notes]
    check = "re-simulated and verified" if made.verified else "NOT verified"
    caption = (
        f"{episode.label}: {made.layout} video of episode {made.episode}, "
        f"{made.steps} steps, {check}"
    )
    return Clip(files.embed(path), caption)


def why(exc: BaseException) -> str:
    """An exception in one line of at most 300 characters, for a note."""
    text = " ".join(str(exc).split())
    text = text if len(text) <= 300 else text[:297] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _named(episode: Episode) -> str:
    return f"{episode.where}: {episode.label}" if episode.where else episode.label
