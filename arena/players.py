"""The policy kinds that need the arena's files or games: ``run:DIR`` and ``masked:SPEC``.

``run:DIR`` is an adversary (or fine-tuned victim) trained by ``arena train-adversary``:
its ``policy.zip`` (read by ``agents.sb3`` without unpickling) behind its
``policy_norm.npz`` statistics, or the latest checkpoint of a run still training.
``masked:SPEC`` is SPEC seeing the opponent's part of its observation frozen at the
episode's start, the entries the game declares (``EnvSpec.opponent_obs``).
Registered with ``agents.specs`` when ``arena`` is imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agents.policies import Policy
from agents.specs import PolicySpecError, register_kind, resolve
from arena.artifacts.training_run import (
    NormStats,
    RunMarker,
    TrainingRunError,
    TrainingRunFiles,
)


def loaded_files(directory: str | Path) -> dict[str, Path]:
    """The files ``run:DIR`` loads (for their sha256 in a manifest)."""
    try:
        model, norm = TrainingRunFiles(Path(directory)).policy_files()
    except TrainingRunError as exc:
        raise PolicySpecError(str(exc)) from None
    return {"policy": model} | ({"norm": norm} if norm is not None else {})


def load_run(
    directory: str | Path,
    observation_space: Any,
    action_space: Any,
    env_id: str | None = None,
    seat: str | None = None,
) -> Policy:
    """``run:DIR``: a run's trained policy; a white-box adversary (``--white-box``) only
    for its own game and seat, with copies of its victims."""
    directory = Path(directory)
    if not directory.is_dir():
        raise PolicySpecError(f"run:{directory}: not a directory")
    files = loaded_files(directory)
    run = TrainingRunFiles(directory)
    marker = None
    if run.marker.is_file():
        try:
            marker = run.read_marker()
        except TrainingRunError as exc:
            raise PolicySpecError(str(exc)) from None
    if marker is None or not marker.config.white_box:
        return load_trained(files["policy"], files.get("norm"), observation_space, action_space)
    where = f"run:{directory}"
    if (env_id, seat) != (marker.env, marker.adversary_seat):
        raise PolicySpecError(
            f"{where} is a white-box adversary of {marker.env} seat "
            f"{marker.adversary_seat!r} (it reads its victim's observation); it "
            f"cannot play {env_id or 'this game'} seat {seat!r}"
        )
    key = directory.resolve()
    if key in _LOADING:  # its victims are runs that lead back to it
        raise PolicySpecError(f"{where}: a white-box adversary whose victims lead back to itself")
    _LOADING.add(key)
    try:
        return adversary_policy(
            marker, files["policy"], files.get("norm"), observation_space, action_space, where
        )
    finally:
        _LOADING.discard(key)


_LOADING: set[Path] = set()
"""The white-box runs being loaded (one loads its victims, which may be runs)."""


def adversary_policy(
    marker: RunMarker,
    model: Path,
    norm: Path | None,
    observation_space: Any,
    action_space: Any,
    where: str = "",
) -> Policy:
    """The trained adversary of a run (its final policy or a checkpoint): white-box
    runs (``--white-box``) wrap it with copies of their victims (``agents.whitebox``)."""
    if not marker.config.white_box:
        return load_trained(model, norm, observation_space, action_space)
    import envs
    from agents.whitebox import WhiteBoxError, WhiteBoxPolicy, augmented_space, white_box_models
    from envs import EnvError

    where = where or f"the white-box run of {marker.env}"
    try:
        seats = envs.spec(marker.env).seats
        game = envs.make(marker.env, **marker.config.env_kwargs)
    except (EnvError, ValueError, TypeError) as exc:
        raise PolicySpecError(f"{where}: its game cannot be made: {exc}") from None
    others = sorted(s for s in seats if s != marker.adversary_seat)
    if sorted(marker.victims) != others:
        game.close()
        raise PolicySpecError(
            f"{where}: its victims must be the seats {', '.join(others)}, not "
            f"{', '.join(sorted(marker.victims)) or 'none'}"
        )
    try:
        victims = {
            s: resolve(
                spec,
                game.observation_space(s),
                game.action_space(s),
                env_id=marker.env,
                seat=s,
            )
            for s, spec in marker.victims.items()
        }
    finally:
        game.close()
    try:
        models = white_box_models(victims)
        space = augmented_space(observation_space, models)
    except WhiteBoxError as exc:
        raise PolicySpecError(str(exc)) from None
    inner = load_trained(model, norm, space, action_space)
    return WhiteBoxPolicy(inner, models, observation_space, action_space)


def load_trained(
    model: Path, norm: Path | None, observation_space: Any, action_space: Any
) -> Policy:
    """An SB3 file trained behind ``VecNormalize`` with the statistics in ``norm``."""
    from agents.sb3 import PolicyFileError, sb3_victim
    from agents.wrappers import NormalizedPolicy

    try:
        inner = sb3_victim(model, observation_space, action_space)
    except PolicyFileError as exc:
        raise PolicySpecError(str(exc)) from None
    if norm is None:
        return inner
    try:
        stats = NormStats.read(norm, inner.observation_space.shape)
    except TrainingRunError as exc:
        raise PolicySpecError(str(exc)) from None
    return NormalizedPolicy(
        inner,
        mean=stats.obs_mean,
        var=stats.obs_var,
        epsilon=stats.epsilon,
        clip=stats.clip_obs,
        enabled=stats.norm_obs,
    )


def samples_by_default(spec: str) -> bool:
    """Whether a seat's policy samples its actions when scored, as it was trained and
    evaluated by its authors: zoo agents (Bansal et al. evaluate them stochastic, as
    Gleave et al. score them) and anything built on one (``masked:zoo:...``, a ``mix:``
    with a zoo part); every other policy, our adversaries included, acts greedily."""
    return "zoo:" in spec


def acting(
    policies: dict[str, str],
    *,
    sample: Sequence[str] = (),
    greedy: Sequence[str] = (),
    every_seat_samples: bool = False,
) -> dict[str, bool]:
    """seat -> deterministic: each seat's default (``samples_by_default``), then the
    seats named in ``sample`` / ``greedy``; ``every_seat_samples`` (``--stochastic``)
    samples all. A seat the game lacks, or named both ways, is a ``UsageError``."""
    from arena.errors import UsageError

    for flag, seats in (("--sample", sample), ("--greedy", greedy)):
        for seat in seats:
            if seat not in policies:
                raise UsageError(f"{flag} {seat}: no such seat; seats: {', '.join(policies)}")
    both = sorted(set(sample) & set(greedy))
    if both:
        raise UsageError(f"seat {both[0]!r} is given both --sample and --greedy")
    if every_seat_samples and greedy:
        raise UsageError("--stochastic samples every seat; use --sample SEAT instead")
    out = {seat: not samples_by_default(spec) for seat, spec in policies.items()}
    out |= dict.fromkeys(sample, False) | dict.fromkeys(greedy, True)
    if every_seat_samples:
        out = dict.fromkeys(policies, False)
    return out


def _run(arg: str, observation_space: Any, action_space: Any, **context: Any) -> Policy:
    return load_run(
        arg, observation_space, action_space, context.get("env_id"), context.get("seat")
    )


def _masked(arg: str, observation_space: Any, action_space: Any, **context: Any) -> Policy:
    import envs
    from agents.wrappers import MaskedPolicy, MaskedTorchPolicy

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
    relative = envs.spec(env_id).opponent_relative.get(seat, ())
    inner = resolve(arg, observation_space, action_space, **context)
    if MaskedTorchPolicy.fits(inner, observation_space):
        return MaskedTorchPolicy(inner, tuple(indices), relative)
    return MaskedPolicy(inner, tuple(indices), relative)


def export_zoo(spec_arg: str, env_id: str, seat: str, directory: Path) -> tuple[Path, Path]:
    """A zoo policy (MLP or LSTM) for ``seat`` of ``env_id`` written as ``directory/policy.zip``
    + ``policy_norm.npz``: the starting point of fine-tuning a zoo victim."""
    import envs
    from agents.zoo import ZooError, load_zoo_policy, to_sb3
    from arena.training_run import TrainingError, save_atomic

    env = envs.make(env_id)
    policy = load_zoo_policy(spec_arg, env.observation_space(seat), env.action_space(seat))
    try:
        model, stats = to_sb3(policy)
    except ZooError as exc:
        raise TrainingError(f"cannot fine-tune zoo:{spec_arg}: {exc}") from None
    files = TrainingRunFiles(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_atomic(model, files.policy)
    NormStats(norm_obs=True, **stats).write(files.norm)
    return files.policy, files.norm


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
