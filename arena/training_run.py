"""``TrainingRun``: one adversary training's directory, its lock, checkpoints and resume.

The files are defined in ``arena.artifacts.training_run``. A run trains in place: it
writes into its final directory, checkpoints atomically every ``checkpoint_every``
steps, and ``--resume`` continues from the latest checkpoint. Only a new run that
fails before its first checkpoint is removed (nothing in it could be resumed).
Progress goes through SB3's logger: ``ProgressCSV`` writes ``progress.csv`` (appending
across resumes), TensorBoard ``tb/``; ``TrainingCallback`` is the one callback.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import stat
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import KVWriter

from arena.artifacts.base import write_json
from arena.artifacts.training_run import (
    EVALUATION,
    PROGRESS,
    AdversaryConfig,
    CheckpointState,
    NormStats,
    RunMarker,
    TrainingResults,
    TrainingRunError,
    TrainingRunFiles,
)
from arena.errors import ArenaError
from arena.io import atomic_path, try_lock

PROGRESS_HEADER = ",".join(PROGRESS) + "\n"


class TrainingError(ArenaError):
    """Bad training input: timesteps <= 0, unknown seat, unusable output directory."""


class RunLock:
    """An exclusive ``flock`` on ``DIR/.lock``: one training per run directory."""

    def __init__(self, path: Path):
        try:
            fd = try_lock(path)
        except OSError as exc:
            raise TrainingError(
                f"run directory {path.parent}: cannot lock {path.name} ({exc.strerror}); "
                f"a run's files must be its own, not links"
            ) from None
        if fd is None:
            try:
                with open(path, encoding="utf-8", errors="replace") as held:
                    owner = held.read(32).strip()
            except OSError:
                owner = ""
            raise TrainingError(
                f"run directory {path.parent} is in use by another training "
                f"(pid {owner or 'another process'})"
            )
        self.fh = os.fdopen(fd, "r+")
        self.fh.truncate()
        self.fh.write(str(os.getpid()))
        self.fh.flush()

    def release(self) -> None:
        self.fh.close()


class TrainingRun:
    """A run directory opened for training: new (``marker`` given) or resumed.

    Use as a context manager: it holds the lock while open; leaving with an error
    removes a new run that has no checkpoint yet.
    """

    def __init__(self, directory: str | Path, marker: RunMarker, *, resumed: bool, created: bool):
        self.files = TrainingRunFiles(Path(directory))
        self.marker = marker
        self.resumed = resumed
        self._created = created
        self._lock: RunLock | None = None

    @classmethod
    def create(cls, directory: str | Path, marker: RunMarker) -> TrainingRun:
        out = Path(directory)
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise TrainingError(
                f"{out} already exists; use --resume to continue it or choose a new --out"
            )
        created = not out.exists()
        out.mkdir(parents=True, exist_ok=True)
        return cls(out, marker, resumed=False, created=created)

    @classmethod
    def resume(
        cls,
        directory: str | Path,
        env_id: str,
        victims: Mapping[str, str],
        runtime: Mapping[str, Any] | None = None,
        *,
        seed: int | None = None,
    ) -> TrainingRun:
        """The run in ``directory``, which must train ``env_id`` against ``victims`` (with
        ``seed``, if one is given); ``runtime`` may change only ``AdversaryConfig.RUNTIME``
        fields (how fast)."""
        files = TrainingRunFiles(Path(directory))
        if not files.directory.is_dir() or not files.is_run():
            raise TrainingError(
                f"--resume: {files.directory} is not an adversary training run "
                f"(no {files.marker.name})"
            )
        try:
            marker = files.read_marker()
        except TrainingRunError as exc:
            raise TrainingError(f"--resume: {exc}") from None
        if marker.env != env_id or marker.victims != dict(victims):
            raise TrainingError(
                f"--resume: {files.directory} trains {marker.env} against "
                f"{marker.victims}, not {env_id} against {dict(victims)}"
            )
        if seed is not None and seed != marker.seed:
            raise TrainingError(
                f"--resume: {files.directory} trains with seed {marker.seed}, not {seed}; "
                f"drop --seed or give {marker.seed}"
            )
        changes = dict(runtime or {})
        fixed = sorted(set(changes) - set(AdversaryConfig.RUNTIME))
        if fixed:
            raise TrainingError(
                f"--resume keeps the run's recipe; only {', '.join(AdversaryConfig.RUNTIME)} "
                f"may change, not {fixed[0]}"
            )
        if changes:
            config = dataclasses.replace(marker.config, **changes)
            marker = dataclasses.replace(marker, config=config)
        return cls(files.directory, marker, resumed=True, created=False)

    def __enter__(self) -> TrainingRun:
        self._check_own_files()
        self._lock = RunLock(self.files.lock)
        if not self.resumed:
            from arena.rundir import run_metadata

            write_json(self.files.marker, self.marker.to_json())
            write_json(self.files.metadata, run_metadata())
        self.files.checkpoints.mkdir(exist_ok=True)
        return self

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        if self._lock is not None:
            self._lock.release()
        if kind is not None and not self.resumed and not self.files.has_checkpoint():
            self._discard()  # a new run that failed before its first checkpoint

    def _check_own_files(self) -> None:
        """Every path the run writes is its own: no link (which would carry a write or
        a removal outside the run), directories where directories belong."""
        f = self.files
        for path, want in (
            (f.checkpoints, stat.S_ISDIR),
            (f.tensorboard, stat.S_ISDIR),
            (f.best, stat.S_ISDIR),
            (f.marker, stat.S_ISREG),
            (f.metadata, stat.S_ISREG),
            (f.progress, stat.S_ISREG),
            (f.evaluation, stat.S_ISREG),
            (f.state, stat.S_ISREG),
            (f.policy, stat.S_ISREG),
            (f.norm, stat.S_ISREG),
            (f.results, stat.S_ISREG),
        ):
            try:
                mode = path.lstat().st_mode
            except FileNotFoundError:
                continue
            if stat.S_ISLNK(mode) or not want(mode):
                what = (
                    "a link"
                    if stat.S_ISLNK(mode)
                    else "not a " + ("directory" if want is stat.S_ISDIR else "regular file")
                )
                raise TrainingError(
                    f"run directory {f.directory}: {path.relative_to(f.directory)} is {what}; "
                    f"a run's files must be its own"
                )

    def _discard(self) -> None:
        out = self.files.directory
        if self._created:
            shutil.rmtree(out, ignore_errors=True)
            return
        for child in out.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)

    # ------------------------------------------------------------ checkpoints

    def latest(self) -> tuple[Path, Path, int] | None:
        """The checkpoint a resume starts from (policy, normalization, timestep)."""
        if not (self.resumed and self.files.has_checkpoint()):
            return None
        try:
            return self.files.latest_checkpoint()
        except TrainingRunError as exc:
            raise TrainingError(f"cannot resume {self.files.directory}: {exc}") from None

    def checkpoint(self, model: Any, vec_normalize: Any, steps: int) -> None:
        """Save the model and statistics at ``steps``, then point ``state.json`` at
        them, then remove older checkpoints: a kill at any moment leaves one whole."""
        model_name, norm_name = CheckpointState.names(steps)
        save_atomic(model, self.files.checkpoints / model_name)
        NormStats.of(vec_normalize).write(self.files.checkpoints / norm_name)
        write_json(self.files.state, CheckpointState(steps, model_name, norm_name).to_json())
        for old in self.files.checkpoints.glob("step_*"):
            if old.name not in (model_name, norm_name):
                old.unlink(missing_ok=True)

    def finish(self, model: Any, vec_normalize: Any, results: TrainingResults) -> None:
        save_atomic(model, self.files.policy, keep_optimizer=False)
        NormStats.of(vec_normalize).write(self.files.norm)
        write_json(self.files.results, results.to_json())

    def evaluate(self, steps: int) -> None:
        """The latest checkpoint as the adversary, greedy, against the victims acting
        as in training: ``eval_episodes`` episodes, one row of ``evaluation.csv``."""
        import envs
        from arena.match import run_match
        from arena.players import adversary_policy

        marker, config = self.marker, self.marker.config
        seat = marker.adversary_seat
        assert seat is not None
        model, norm, _ = self.files.latest_checkpoint()
        game = envs.make(marker.env, **config.env_kwargs)
        adversary = adversary_policy(
            marker, model, norm, game.observation_space(seat), game.action_space(seat)
        )
        game.close()
        deterministic = {s: not config.victim_sampled for s in marker.victims} | {seat: True}
        result, _ = run_match(
            marker.env,
            {**marker.victims, seat: adversary},
            n_episodes=config.eval_episodes,
            seed=10**6 + steps,
            env_kwargs=config.env_kwargs,
            deterministic=deterministic,
        )
        score = result.seats[seat]
        low, high = score.win_rate_ci95
        n = score.wins + score.losses + score.ties
        row = f"{steps},{n},{score.win_rate:.4f},{low:.4f},{high:.4f},{score.losses / n:.4f}\n"
        path = self.files.evaluation
        if not path.exists():
            path.write_text(",".join(EVALUATION) + "\n")
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(row)
        best = {"timesteps": steps, "episodes": n, "win_rate": round(score.win_rate, 4)}
        best |= {"win_low": round(low, 4), "win_high": round(high, 4)}
        self.keep_best(model, norm, best)

    def keep_best(self, model: Path, norm: Path, score: dict[str, Any]) -> None:
        """Make the checkpoint (``model``, ``norm``) ``best/`` if its greedy win rate is
        higher than the best one's (the earlier one on a tie). The new ``best/`` is
        built whole as ``.best.new`` and swapped in by renames; a kill between the two
        renames leaves the old one as ``.best.old``, which the next evaluation puts back."""
        out = self.files.directory
        best, new, old = self.files.best, out / ".best.new", out / ".best.old"
        if not best.exists() and _real_dir(old):
            os.replace(old, best)  # a kill came between the renames
        for leftover in (new, old):
            _remove(leftover)
        current = self.files.best_score()
        if current is not None and score["win_rate"] <= current["win_rate"]:
            return
        new.mkdir()
        strip_optimizer(model, new / self.files.policy.name)
        shutil.copyfile(norm, new / self.files.norm.name)
        shutil.copyfile(self.files.marker, new / self.files.marker.name)
        write_json(new / self.files.best_record.name, score)
        if best.exists():
            os.replace(best, old)
        os.replace(new, best)
        _remove(old)

    def logger(self, done: int) -> Any:
        """SB3's logger for this session: ``progress.csv`` (its rows after the
        checkpoint at ``done`` dropped) and a new TensorBoard folder ``tb/ppo_N``."""
        from stable_baselines3.common.logger import Logger, TensorBoardOutputFormat
        from stable_baselines3.common.utils import get_latest_run_id

        path = self.files.progress
        if not path.exists():
            path.write_text(PROGRESS_HEADER)
        elif self.resumed:
            trim_progress(path, done)
            if self.files.evaluation.exists():
                trim_progress(self.files.evaluation, done, EVALUATION)
        tb = self.files.tensorboard
        session = tb / f"ppo_{get_latest_run_id(str(tb), 'ppo') + 1}"
        return Logger(None, [ProgressCSV(path), TensorBoardOutputFormat(str(session))])

    def episodes_so_far(self) -> int:
        """The episode count of ``progress.csv``'s last row (0 for a new run)."""
        try:
            last = self.files.progress.read_text(encoding="utf-8").splitlines()[-1].split(",")
            return int(last[PROGRESS.index("episodes")])
        except (OSError, IndexError, ValueError):
            return 0


def _real_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def _remove(path: Path) -> None:
    """Remove ``path``: a directory with its files, a file or a link (never what a link
    leads to)."""
    if _real_dir(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def save_atomic(model: Any, path: Path, *, keep_optimizer: bool = True) -> None:
    """``model.save`` to a temporary file in the same directory, then rename. Without
    ``keep_optimizer`` the optimizer state (needed only to resume training, two thirds
    of the file) is left out: the file still loads as a policy."""
    with atomic_path(path) as tmp:
        model.save(tmp)
        if not keep_optimizer:
            strip_optimizer(tmp, tmp)


def strip_optimizer(src: Path, dst: Path) -> None:
    """The SB3 file ``src`` without its optimizer state, written to ``dst`` (which may
    be ``src``)."""
    import zipfile

    with zipfile.ZipFile(src) as zin:
        members = [(i, zin.read(i)) for i in zin.infolist() if i.filename != "policy.optimizer.pth"]
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info, data in members:
            zout.writestr(info, data)


def trim_progress(path: Path, timesteps: int, columns: tuple[str, ...] = PROGRESS) -> None:
    """Keep the rows of ``progress.csv`` (or another table of ``columns`` keyed by
    timesteps) logged up to the checkpoint a run resumes from (``timesteps``): the rows
    after it were logged by steps that are replayed now, and would repeat. A row cut
    short by the kill goes too. Written atomically."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    kept = [",".join(columns)]
    for line in lines[1:]:
        cells = line.split(",")
        if len(cells) != len(columns) or not cells[0].isdigit():
            continue
        if int(cells[0]) <= timesteps:
            kept.append(line)
    text = "\n".join(kept) + "\n"
    if text != "\n".join(lines) + "\n":
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")


class ProgressCSV(KVWriter):
    """An SB3 logger output: the ``arena/*`` values of each dump as one row of
    ``progress.csv`` (fixed ``PROGRESS`` columns, appended: a resumed run continues
    its file, unlike SB3's own CSV output, which starts it anew)."""

    def __init__(self, path: Path):
        self.path = path

    def write(self, key_values: dict[str, Any], key_excluded: Any, step: int = 0) -> None:
        if "arena/win_rate" not in key_values:
            return
        row = [
            str(int(key_values["time/total_timesteps"])),
            f"{key_values['arena/win_rate']:.4f}",
            str(int(key_values["arena/episodes"])),
            f"{key_values['arena/steps_per_s']:.1f}",
            f"{key_values['arena/shaping']:.4f}",
        ]
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(",".join(row) + "\n")

    def close(self) -> None:
        pass


class TrainingCallback(BaseCallback):
    """Progress bar, rolling win rate of the last 200 episodes, the ``arena/*`` values
    for the logger at each rollout's end, and checkpoints of ``run`` (if any)."""

    def __init__(
        self,
        total: int,
        desc: str,
        *,
        run: TrainingRun | None = None,
        checkpoint_every: int = 0,
        show: bool = True,
    ):
        super().__init__()
        self.total, self.desc, self.show = total, desc, show
        self.run, self.checkpoint_every = run, checkpoint_every
        self.evaluate_every = run.marker.config.eval_every if run is not None else 0
        self.outcomes: list[float] = []
        self.episodes = 0

    @property
    def win_rate(self) -> float | None:
        return float(np.mean(self.outcomes)) if self.outcomes else None

    def _on_training_start(self) -> None:
        from tqdm import tqdm

        self.t0 = time.perf_counter()
        self.start_steps = self.last_ckpt = self.num_timesteps
        self.bar = tqdm(
            total=self.total,
            initial=self.num_timesteps,
            unit="step",
            desc=self.desc,
            disable=None if self.show else True,
            leave=False,
        )

    def steps_per_s(self) -> float:
        return (self.num_timesteps - self.start_steps) / max(1e-9, time.perf_counter() - self.t0)

    def _on_step(self) -> bool:
        self.bar.update(self.training_env.num_envs)
        for info in self.locals.get("infos", ()):
            if "outcome" in info:
                self.episodes += 1
                self.outcomes = [*self.outcomes[-199:], float(info["outcome"] == "win")]
        due = self.num_timesteps - self.last_ckpt >= self.checkpoint_every > 0
        if self.run is not None and due:
            self.checkpoint()
        return True

    def checkpoint(self) -> None:
        """Checkpoint ``run`` now; evaluate it if an ``eval_every`` boundary passed."""
        assert self.run is not None
        steps, every = self.num_timesteps, self.evaluate_every
        self.run.checkpoint(self.model, self.model.get_vec_normalize_env(), steps)
        if every and steps // every > self.last_ckpt // every:
            self.run.evaluate(steps)
        self.last_ckpt = steps

    def _on_rollout_end(self) -> None:
        from arena.rewards import GameShaping, reward_terms

        win = self.win_rate if self.win_rate is not None else float("nan")
        shaping = [t.weight for t in reward_terms(self.training_env) if isinstance(t, GameShaping)]
        self.logger.record("arena/win_rate", win)
        self.logger.record("arena/episodes", self.episodes)
        self.logger.record("arena/steps_per_s", self.steps_per_s())
        self.logger.record("arena/shaping", shaping[0] if shaping else 0.0)
        self.bar.set_postfix(win=f"{win:.2f}", sps=f"{self.steps_per_s():.0f}")

    def _on_training_end(self) -> None:
        self.bar.close()
