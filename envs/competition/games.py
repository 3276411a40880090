"""The competitive MuJoCo games of Bansal et al. (2018), rebuilt on today's MuJoCo.

Every game is a PettingZoo ``ParallelEnv`` with two seats. Observations follow the
layout the agent-zoo victims expect (``../shared/zoo/GAMES.md`` §4.1), physics the
options of the original scenes (RK4, 5 substeps, PGS with 1000 iterations) with
MuJoCo 1.31's capsule inertials (``scene``). Rules and rewards follow §4.2–4.3:

* the returned reward is the goal reward (±1000 at the end) plus ``shaping`` times
  the dense move reward (``shaping=1.0`` is the original games);
* ``info[seat]`` carries ``reward_move`` (the dense move reward),
  ``reward_shaping`` (the scene's info-only shaping term, never in the reward),
  ``reward_remaining`` (the goal reward) and ``winner``; at the end of an episode
  also ``outcome``: ``"win"``, ``"loss"`` or ``"tie"`` (the seat with the
  ``winner`` flag wins, the other loses; without a winner both tie, as Gleave et
  al. scored them).

Randomness comes only from the env's seeded generator, so the same seed and
actions give identical observations (records are replayed by re-simulation).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from envs.competition import scene as sc
from envs.paint import Camera, Color, Shot

GOAL_REWARD = 1000.0
MAX_STEPS = 500
FRAME_SKIP = 5


@dataclass(frozen=True)
class _Seat:
    """Index ranges of one agent in the compiled model."""

    qpos: slice
    qvel: slice
    bodies: np.ndarray
    body: slice
    """The same bodies as ``bodies`` (they are contiguous): views instead of copies."""
    torso: int
    geoms: frozenset[int]
    ctrl: slice
    ctrl_low: np.ndarray
    ctrl_high: np.ndarray
    mass: np.ndarray
    mass_sum: float


_MODELS: dict[sc.SceneConfig, Any] = {}


def _compiled(config: sc.SceneConfig) -> Any:
    """A fresh copy of the scene's compiled model (compiled once per process)."""
    if config not in _MODELS:
        _MODELS[config] = sc.build_scene(config).compile()
    return copy.deepcopy(_MODELS[config])


class _Rows:
    """What a step's rewards and observations read, one row per copy of a game.

    After each copy's physics its MjData fields (``_row_fields``) are copied into row
    ``i``, one copy per field, and the move rewards, the forward progress and the
    observations of all copies are computed over the rows at once: each numpy call
    once per batch instead of once per copy. A call costs microseconds whatever its
    size (``np.add.reduce`` of 13 numbers: 3.5 µs on a loaded machine), and the
    per-copy calls on a few numbers each were most of a game's Python time. The rules
    read each copy's own ``MjData`` (they branch per copy). Also the per-episode
    values of each copy: step count, start sides, progress after the latest physics;
    sumo: arena radius and both distances from its centre.
    """

    def __init__(self, games: Sequence[CompetitionEnv]):
        game = games[0]
        self.n = n = len(games)
        fields = game._row_fields()
        self.f = {f: np.empty((n, *getattr(game.data, f).shape)) for f in fields}
        self._copies = [
            [(self.f[f][i], getattr(g.data, f)) for f in fields] for i, g in enumerate(games)
        ]
        self.t = np.zeros(n, dtype=np.int64)
        self.start_sign = np.ones((n, 2))
        self.progress = np.zeros((n, 2))
        self.radius = np.zeros(n)
        self.radii = np.zeros((n, 2))
        self.plans = [self._plan(game._obs_sources(k)) for k in range(2)]

    def _plan(self, sources: list[tuple[str, slice, bool]]) -> list[tuple[slice, np.ndarray, bool]]:
        """``(destination columns, source rows, clip to ±1)``; sources are views of the rows."""
        plan, at = [], 0
        for field, index, clip in sources:
            view = self.f[field][:, index]
            view = view.reshape(self.n, -1)
            assert np.shares_memory(view, self.f[field]), "an observation source must be a view"
            plan.append((slice(at, at + view.shape[1]), view, clip))
            at += view.shape[1]
        return plan

    def gather(self, i: int) -> None:
        for row, field in self._copies[i]:
            row[...] = field

    def restart(self, i: int, game: CompetitionEnv) -> None:
        """Row ``i`` after ``game`` (copy ``i``) was reset."""
        self.gather(i)
        self.t[i] = 0
        self.start_sign[i] = game._start_sign
        game._restart_row(self, i)
        game._after_physics_rows(self)
        self.progress[i] = game._progress_rows(self)[i]


class CompetitionEnv(ParallelEnv):
    """Base of the two-seat MuJoCo games; subclasses set the scene, observation and rules.

    One game steps on its own MjData with scalar arithmetic (``step``); copies of a game
    step together through ``Copies`` (``batch``), which computes the same rewards and
    observations over rows of all copies at once. Two implementations of the move
    rewards, progress and observations, one of the rules: ``tests/test_competition.py``
    holds them to the same bits in every game. (Rows of one copy cost more than scalars:
    a single game stepped as a batch of one ran 10-16% slower.)
    """

    metadata = {"name": "competition", "render_modes": ["rgb_array"], "render_fps": 66}
    seats: tuple[str, str] = ("agent_0", "agent_1")
    """Names of physical seat 0 and seat 1 (the order of the agents in the scene)."""
    scene: sc.SceneConfig
    obs_size: int

    def __init__(
        self,
        *,
        max_steps: int = MAX_STEPS,
        shaping: float = 1.0,
        render_mode: str | None = None,
        width: int = 640,
        height: int = 480,
    ):
        import mujoco

        if max_steps <= 0:
            raise ValueError(f"max_steps must be > 0, got {max_steps}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self._mj = mujoco
        self.max_steps = int(max_steps)
        self.shaping = float(shaping)
        self.render_mode = render_mode
        self._size = (int(height), int(width))
        self._renderer: Any = None
        self._film: Any = None
        self.model = _compiled(self.scene)
        self.data = mujoco.MjData(self.model)
        self._seat = [self._index(k) for k in range(2)]
        self.possible_agents = list(self.agent_order())
        self.agents: list[str] = []
        self._phys = {name: self.seats.index(name) for name in self.possible_agents}
        self._obs_space = spaces.Box(-np.inf, np.inf, shape=(self.obs_size,), dtype=np.float64)
        self._act_spaces = {
            name: spaces.Box(
                self._seat[k].ctrl_low.astype(np.float32),
                self._seat[k].ctrl_high.astype(np.float32),
                dtype=np.float32,
            )
            for name, k in self._phys.items()
        }
        self._rng = np.random.default_rng()
        self.t = 0
        self._start_sign = np.ones(2)
        self._bind()

    @staticmethod
    def batch(games: Sequence[CompetitionEnv]) -> Copies:
        """``games`` (copies of one game, each reset) stepped together (``Copies``)."""
        return Copies(games)

    def _bind(self) -> None:
        """Cache views of the MjData buffers the step reads (they never move)."""
        mj, m, d = self._mj, self.model, self.data
        self._qpos, self._qvel, self._ctrl = d.qpos, d.qvel, d.ctrl
        self._free_quats = [
            int(m.jnt_qposadr[j]) + 3
            for j in range(m.njnt)
            if m.jnt_type[j] == mj.mjtJoint.mjJNT_FREE
        ]
        seat_of_geom = np.full(m.ngeom, -1, dtype=np.int64)
        for k, s in enumerate(self._seat):
            seat_of_geom[sorted(s.geoms)] = k
        self._seat_of_geom = seat_of_geom
        self._cfrc = [d.cfrc_ext[s.body] for s in self._seat]
        self._xipos_x = [d.xipos[s.body, 0] for s in self._seat]
        self._own_qpos = [d.qpos[s.qpos] for s in self._seat]
        self._own_xy = [q[:2] for q in self._own_qpos]
        self._plans = [self._data_plan(k) for k in range(2)]

    def _row_fields(self) -> tuple[str, ...]:
        """The MjData fields that rewards and observations read (``_Rows``)."""
        if self.scene.agent == sc.HUMANOID:
            return ("qpos", "qvel", "cfrc_ext", "cinert", "cvel", "qfrc_actuator", "xipos")
        return ("qpos", "qvel", "cfrc_ext", "subtree_com")

    def _obs_sources(self, k: int) -> list[tuple[str, slice, bool]]:
        """``(field, index, clip to ±1)`` of the standard observation part, in order."""
        s, o = self._seat[k], self._seat[1 - k]
        sources = [("qpos", s.qpos, False), ("qvel", s.qvel, False)]
        if self.scene.agent == sc.HUMANOID:
            sources += [("cinert", s.body, False), ("cvel", s.body, False)]
            sources += [("qfrc_actuator", s.qvel, False)]
        return [*sources, ("cfrc_ext", s.body, True), ("qpos", o.qpos, False)]

    def _data_plan(self, k: int) -> list[tuple[slice, np.ndarray, bool]]:
        """``(destination, source view of data, clip to ±1)``: the standard part's copies."""
        sources = []
        for field, index, clip in self._obs_sources(k):
            view = getattr(self.data, field)[index].reshape(-1)
            assert np.shares_memory(view, getattr(self.data, field)), "a source must be a view"
            sources.append((view, clip))
        return _layout(sources)

    # ---- structure -------------------------------------------------------------------
    def agent_order(self) -> tuple[str, ...]:
        """``possible_agents`` order (defaults to the physical order)."""
        return self.seats

    def _index(self, k: int) -> _Seat:
        mj, m = self._mj, self.model
        prefix = f"agent{k}/"
        joints = [
            j for j in range(m.njnt) if _name(mj, m, mj.mjtObj.mjOBJ_JOINT, j).startswith(prefix)
        ]
        q0 = int(m.jnt_qposadr[joints[0]])
        v0 = int(m.jnt_dofadr[joints[0]])
        q1 = int(m.jnt_qposadr[joints[-1]]) + 1
        v1 = int(m.jnt_dofadr[joints[-1]]) + 1
        bodies = np.array(
            [b for b in range(m.nbody) if _name(mj, m, mj.mjtObj.mjOBJ_BODY, b).startswith(prefix)]
        )
        torso = mj.mj_name2id(m, mj.mjtObj.mjOBJ_BODY, prefix + "torso")
        geoms = frozenset(int(g) for g in range(m.ngeom) if int(m.geom_bodyid[g]) in set(bodies))
        acts = [a for a in range(m.nu) if int(m.actuator_trnid[a, 0]) in set(joints)]
        ctrl = slice(acts[0], acts[-1] + 1)
        body = slice(int(bodies[0]), int(bodies[-1]) + 1)
        assert np.array_equal(np.arange(body.start, body.stop), bodies), (
            "agent bodies not contiguous"
        )
        mass = m.body_mass[body].copy()
        return _Seat(
            slice(q0, q1),
            slice(v0, v1),
            bodies,
            body,
            torso,
            geoms,
            ctrl,
            m.actuator_ctrlrange[ctrl, 0].copy(),
            m.actuator_ctrlrange[ctrl, 1].copy(),
            mass,
            float(mass.sum()),
        )

    def observation_space(self, agent: str) -> spaces.Box:
        self._check_agent(agent)
        return self._obs_space

    def action_space(self, agent: str) -> spaces.Box:
        self._check_agent(agent)
        return self._act_spaces[agent]

    def _check_agent(self, agent: str) -> None:
        if agent not in self._act_spaces:
            raise ValueError(f"unknown agent {agent!r}; valid: {', '.join(self.possible_agents)}")

    # ---- reset -----------------------------------------------------------------------
    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        mj, m, d = self._mj, self.model, self.data
        mj.mj_resetData(m, d)
        self._before_noise(self._rng)
        d.qpos[:] = m.qpos0 + self._rng.uniform(-0.1, 0.1, size=m.nq)
        d.qvel[:] = self._rng.normal(0.0, 0.1, size=m.nv)
        self._place(self._rng)
        for a in self._free_quats:
            d.qpos[a : a + 4] /= np.linalg.norm(d.qpos[a : a + 4])
        mj.mj_forward(m, d)
        mj.mj_rnePostConstraint(m, d)
        self._after_physics()
        self._progress = self._progress_x()
        self.t = 0
        self.agents = list(self.possible_agents)
        self._start_sign = np.array([-1.0 if d.qpos[s.qpos][0] > 0 else 1.0 for s in self._seat])
        self._after_reset()
        obs = {a: self._observe(self._phys[a]) for a in self.agents}
        infos: dict[str, dict[str, Any]] = {a: {} for a in self.agents}
        return obs, infos

    def _before_noise(self, rng: np.random.Generator) -> None:
        """Scene randomisation before the standard noise (sumo: the arena radius)."""

    def _place(self, rng: np.random.Generator) -> None:
        """Scene placement after the noise (x, y of the agents; z kept)."""

    def _after_reset(self) -> None:
        """Per-episode state of the rules."""

    def _after_physics(self) -> None:
        """Per-step quantities that rewards, rules and observations share (computed once)."""

    def _restart_row(self, rows: _Rows, i: int) -> None:
        """Per-episode values of row ``i`` beyond step count and start sides (sumo: radius)."""

    def _after_physics_rows(self, rows: _Rows) -> None:
        """Per-step quantities that rewards, rules and observations share (computed once)."""

    def _before_rules(self, rows: _Rows, i: int) -> None:
        """What this copy's rules read of row ``i`` (sumo: the distances from the centre)."""

    # ---- step ------------------------------------------------------------------------
    def step(self, actions: dict[str, np.ndarray]):
        if not self.agents:
            raise RuntimeError("step() called on a finished episode; call reset()")
        mj, m, d = self._mj, self.model, self.data
        acts = [_NO_ACTION, _NO_ACTION]
        for name, k in self._phys.items():
            if name not in actions:
                raise ValueError(f"no action for agent {name!r}")
            a = actions[name]
            want = self._act_spaces[name].shape
            # what a vectorised game passes (float64 rows of the right shape) as it is
            if type(a) is not np.ndarray or a.dtype != np.float64 or a.shape != want:
                a = np.asarray(a, dtype=np.float64).reshape(-1)
                if a.shape != want:
                    raise ValueError(f"{name}: action must have shape {want}, got {a.shape}")
            acts[k] = a
        if len(actions) != len(self._phys):
            unknown = set(actions) - set(self._phys)
            raise ValueError(
                f"actions for unknown agents {sorted(unknown)}; "
                f"valid: {', '.join(self.possible_agents)}"
            )
        before = self._progress
        ctrl = self._ctrl
        for k, s in enumerate(self._seat):
            ctrl[s.ctrl] = acts[k]
        mj.mj_step(m, d, nstep=FRAME_SKIP)
        mj.mj_rnePostConstraint(m, d)
        self._after_physics()
        self._progress = self._progress_x()
        self.t += 1
        move, agent_done = self._move_rewards(acts, before)
        qpos, qvel = self._qpos, self._qvel
        # a finite sum has finite terms (an inf or nan term makes it inf or nan); only a
        # sum that overflows needs the element-wise check
        finite = math.isfinite(_add(qpos) + _add(qvel)) or bool(
            np.isfinite(qpos).all() and np.isfinite(qvel).all()
        )
        rewards, infos, done, truncated = self._conclude(move, agent_done, finite)
        obs = {name: self._observe(k) for name, k in self._phys.items()}
        terminations = {a: done and not truncated for a in self.agents}
        truncations = {a: truncated for a in self.agents}
        if done:
            self.agents = []
        return (
            obs,
            {name: rewards[k] for name, k in self._phys.items()},
            terminations,
            truncations,
            infos,
        )

    def _conclude(self, move: Sequence[float], fallen: list[bool], finite: bool):
        """The end of a step, after its physics and move rewards (both steps share it):
        the rules; ``(rewards by physical seat, {name: info}, done, truncated)``."""
        self._end = None
        goal, winner, shaping, done = self._rules(fallen)
        timeout = self.t >= self.max_steps
        if not finite:
            goal, winner, done = [0.0, 0.0], None, True
            self._end = "physics diverged"
        done = done or timeout
        end = (self._end or "step limit") if done else None
        rewards = [float(goal[k] + self.shaping * move[k]) for k in range(2)]
        infos = {}
        for name, k in self._phys.items():
            info: dict[str, Any] = {
                "reward_move": float(move[k]),
                "reward_shaping": float(shaping[k]),
                "reward_remaining": float(goal[k]),
                "winner": winner == k,
                # the opponent's torso height (m): how near it is to falling
                "opponent_height": self._z(1 - k),
            }
            if done:
                info["outcome"] = "tie" if winner is None else "win" if winner == k else "loss"
                info["end"] = end
            infos[name] = info
        return rewards, infos, done, done and timeout and not self._decided

    _decided = False
    """Set by ``_rules`` when the episode ended by a rule rather than the step limit."""
    _end: str | None = None
    """Set by ``_rules`` when it ends the episode: how (``info["end"]``, e.g. ``"goal"``);
    an episode that ends otherwise ended at the ``"step limit"``."""

    def _progress_x(self) -> np.ndarray:
        """Per-seat x that the forward-progress reward differentiates. Computed once
        after each step's physics (``_progress``, what ``_move_rewards`` reads) and
        kept as the next step's ``before``: the positions it reads (``xipos``,
        ``subtree_com``) change only in ``mj_step``, so this is what recomputing it at
        the next step's start would give."""
        return np.zeros(2)

    _progress: np.ndarray
    """``_progress_x()`` after the latest physics (the reset's, or the step's)."""

    def _move_rewards(self, acts: list[np.ndarray], before: np.ndarray):
        raise NotImplementedError

    def _rules(self, agent_done: list[bool]):
        """``(goal rewards, winner seat or None, info-only shaping, done)`` after a step."""
        raise NotImplementedError

    def _progress_rows(self, rows: _Rows) -> np.ndarray:
        """``_progress_x`` of every row, ``(n, 2)``."""
        return np.zeros((rows.n, 2))

    def _move_rows(self, rows: _Rows, acts: list[np.ndarray], before: np.ndarray):
        """``_move_rewards`` of every row: ``([seat 0, seat 1] move rewards, [seat 0, seat 1]
        fallen)``, arrays over rows (``acts[k]``: seat ``k``'s control rows)."""
        raise NotImplementedError

    # ---- helpers ---------------------------------------------------------------------
    def _z(self, k: int) -> float:
        return float(self._own_qpos[k][2])

    def _xy(self, k: int) -> np.ndarray:
        return self._own_qpos[k][:2].copy()

    def _radius_xy(self, k: int) -> float:
        """Distance of the agent's root from the vertical axis through the origin."""
        x, y = self._own_xy[k].tolist()
        return _norm2(x, y)

    # The ufuncs below compute what np.square(...).sum(), np.clip and .sum() compute,
    # bit for bit, without those functions' Python wrappers (a step calls them often).
    def _contact_cost(self, k: int) -> float:
        f = self._cfrc[k]
        return float(min(0.5e-6 * _add(f * f, axis=None), 10.0))

    def _ctrl_cost(self, k: int, a: np.ndarray, weight: float, clip: bool) -> float:
        if clip:
            s = self._seat[k]
            a = _minimum(_maximum(a, s.ctrl_low), s.ctrl_high)
        return weight * float(_add(a * a))

    def _mass_center_x(self, k: int) -> float:
        s = self._seat[k]
        return float(_add(s.mass * self._xipos_x[k]) / s.mass_sum)

    def _subtree_x(self, k: int) -> float:
        return float(self.data.subtree_com[self._seat[k].torso, 0])

    # Rows of per-copy quantities. The ufuncs compute what np.square(...).sum(), np.clip
    # and .sum() compute, bit for bit, per row (a reduction along a row is the reduction
    # of that row alone), without those functions' Python wrappers.
    def _z_rows(self, rows: _Rows, k: int) -> np.ndarray:
        return rows.f["qpos"][:, self._seat[k].qpos.start + 2]

    def _xy_rows(self, rows: _Rows, k: int) -> np.ndarray:
        q0 = self._seat[k].qpos.start
        return rows.f["qpos"][:, q0 : q0 + 2]

    def _contact_cost_rows(self, rows: _Rows, k: int) -> np.ndarray:
        f = rows.f["cfrc_ext"][:, self._seat[k].body].reshape(rows.n, -1)
        return _minimum(0.5e-6 * _add(f * f, axis=1), 10.0)

    def _ctrl_cost_rows(self, k: int, a: np.ndarray, weight: float, clip: bool) -> np.ndarray:
        if clip:
            s = self._seat[k]
            a = _minimum(_maximum(a, s.ctrl_low), s.ctrl_high)
        return weight * _add(a * a, axis=1)

    def _mass_center_x_rows(self, rows: _Rows, k: int) -> np.ndarray:
        s = self._seat[k]
        return _add(s.mass * rows.f["xipos"][:, s.body, 0], axis=1) / s.mass_sum

    def _subtree_x_rows(self, rows: _Rows, k: int) -> np.ndarray:
        return rows.f["subtree_com"][:, self._seat[k].torso, 0]

    def _touching(self, geoms_a: frozenset[int], geoms_b: frozenset[int]) -> bool:
        """Whether a geom of ``geoms_a`` penetrates (dist < 0) one of ``geoms_b``."""
        d = self.data
        if d.ncon == 0:
            return False
        con = d.contact
        deep = con.dist < 0
        if not deep.any():
            return False
        g1, g2 = con.geom1[deep], con.geom2[deep]
        for x, y in zip(g1.tolist(), g2.tolist(), strict=True):
            if (x in geoms_a and y in geoms_b) or (x in geoms_b and y in geoms_a):
                return True
        return False

    def _agents_touching(self) -> bool:
        """Whether a geom of seat 0 penetrates a geom of seat 1 (vectorised ``_touching``)."""
        d = self.data
        if d.ncon == 0:
            return False
        con = d.contact
        # seats are 0, 1 or -1 (world, ball): a pair sums to 1 only for (0, 1) or (1, 0)
        pair = self._seat_of_geom[con.geom]
        return bool(((pair.sum(axis=1) == 1) & (con.dist < 0)).any())

    def _standard_obs_into(self, k: int, out: np.ndarray) -> None:
        """Own qpos, qvel, [cinert, cvel, qfrc_actuator,] clipped cfrc_ext, other's qpos."""
        for dst, src, clip in self._plans[k]:
            if clip:  # np.clip's result, without its Python wrapper
                part = out[dst]
                np.maximum(src, -1.0, out=part)
                np.minimum(part, 1.0, out=part)
            else:
                out[dst] = src

    def _observe(self, k: int) -> np.ndarray:
        out = np.empty(self.obs_size)
        self._standard_obs_into(k, out)
        return out

    def _observe_rows(self, rows: _Rows, k: int) -> np.ndarray:
        """Seat ``k``'s observations, ``(n, obs_size)``: own qpos, qvel, [cinert, cvel,
        qfrc_actuator,] clipped cfrc_ext, other's qpos, then the scene's own part."""
        out = np.empty((rows.n, self.obs_size))
        for dst, src, clip in rows.plans[k]:
            part = out[:, dst]
            if clip:  # np.clip's result, without its Python wrapper
                _maximum(src, -1.0, out=part)
                _minimum(part, 1.0, out=part)
            else:
                part[...] = src
        return out

    # ---- rendering -------------------------------------------------------------------
    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        mj = self._mj
        if self._renderer is None:
            h, w = self._size
            self._renderer = mj.Renderer(self.model, height=h, width=w)
            self._camera = mj.MjvCamera()
            self._camera.lookat[:] = [0.0, 0.0, 0.6]
            self._camera.distance = 11.0
            self._camera.azimuth = 90.0
            self._camera.elevation = -25.0
        self._renderer.update_scene(self.data, camera=self._camera)
        return np.asarray(self._renderer.render())

    # ---- envs.paint.FilmedScene: a painter's own following camera -------------------
    def seat_colors(self) -> dict[str, Color]:
        return {
            name: (int(255 * r), int(255 * g), int(255 * b))
            for name, k in self._phys.items()
            for r, g, b, _ in [sc.SEAT_COLORS[k]]
        }

    def seat_points(self) -> dict[str, np.ndarray]:
        return {name: self.data.xpos[self._seat[k].torso].copy() for name, k in self._phys.items()}

    def film_fovy(self) -> float:
        return float(self.model.vis.global_.fovy)

    def film(self, camera: Camera, *, height: int, width: int) -> Shot:
        """Without shadows, reflections or multisampling: together about 6x faster under
        software GL (Mesa llvmpipe, on a machine without a GPU), ~20 ms a 640x480 frame."""
        mj, m = self._mj, self.model
        size = (min(height, int(m.vis.global_.offheight)), min(width, int(m.vis.global_.offwidth)))
        if self._film is None or (self._film.height, self._film.width) != size:
            self._close_film()
            samples = int(m.vis.quality.offsamples)
            m.vis.quality.offsamples = 0  # read once, by the renderer's context
            try:
                self._film = mj.Renderer(m, height=size[0], width=size[1])
            finally:
                m.vis.quality.offsamples = samples
            self._film.scene.flags[mj.mjtRndFlag.mjRND_SHADOW] = False
            self._film.scene.flags[mj.mjtRndFlag.mjRND_REFLECTION] = False
        view = mj.MjvCamera()
        view.lookat[:] = camera.lookat
        view.distance = camera.distance
        view.azimuth = camera.azimuth
        view.elevation = camera.elevation
        self._film.update_scene(self.data, camera=view)
        image = np.array(self._film.render(), dtype=np.uint8)
        gl = self._film.scene.camera[0]
        return Shot(
            image=image,
            position=np.array(gl.pos, dtype=np.float64),
            forward=np.array(gl.forward, dtype=np.float64),
            up=np.array(gl.up, dtype=np.float64),
            near=float(gl.frustum_near),
            center=float(gl.frustum_center),
            half_width=float(gl.frustum_width),
            bottom=float(gl.frustum_bottom),
            top=float(gl.frustum_top),
        )

    def _close_film(self) -> None:
        if self._film is not None:
            self._film.close()
            self._film = None

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        self._close_film()


class Copies:
    """``n`` copies of one competition game stepped together (``arena.vector`` uses it;
    a game's own ``step`` is a batch of one).

    Each copy's physics in turn, then the rewards and observations of all copies at
    once over rows (``_Rows``), then each copy's rules. The copies belong to it: step
    them only through it, and after resetting copy ``i`` call ``restart(i)``.
    """

    def __init__(self, games: Sequence[CompetitionEnv]):
        self.games = list(games)
        self.game = self.games[0]
        self.rows = _Rows(self.games)

    def restart(self, i: int) -> None:
        self.rows.restart(i, self.games[i])

    def step(
        self, actions: dict[str, np.ndarray]
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray, np.ndarray, list]:
        """Seat -> float64 action rows in; seat -> observation rows, seat -> reward rows,
        terminated, truncated and each copy's ``{seat: info}`` out (no auto-reset)."""
        g = self.game
        acts = [_NO_ACTION, _NO_ACTION]
        for name, k in g._phys.items():
            acts[k] = actions[name]
        obs, rewards, terminated, truncated, infos = self.step_seats(acts)
        for i in np.flatnonzero(terminated | truncated):
            self.games[i].agents = []
        return (
            {name: obs[k] for name, k in g._phys.items()},
            {name: rewards[k] for name, k in g._phys.items()},
            terminated,
            truncated,
            infos,
        )

    def step_seats(self, acts: list[np.ndarray]):
        """One step of every copy with physical seat ``k``'s control rows ``acts[k]``:
        ``([obs rows of seat 0, 1], [reward rows of seat 0, 1], terminated, truncated,
        [{name: info} per copy])``."""
        g, rows, games = self.game, self.rows, self.games
        mj = g._mj
        ctrl0, ctrl1 = g._seat[0].ctrl, g._seat[1].ctrl
        a0, a1 = acts
        for i, game in enumerate(games):
            ctrl = game._ctrl
            ctrl[ctrl0] = a0[i]
            ctrl[ctrl1] = a1[i]
            mj.mj_step(game.model, game.data, nstep=FRAME_SKIP)
            mj.mj_rnePostConstraint(game.model, game.data)
            rows.gather(i)
            game.t += 1
        rows.t += 1
        g._after_physics_rows(rows)
        before = rows.progress
        rows.progress = g._progress_rows(rows)
        move, fallen = g._move_rows(rows, acts, before)
        qpos, qvel = rows.f["qpos"], rows.f["qvel"]
        # a finite sum has finite terms (an inf or nan term makes it inf or nan); only a
        # sum that overflows needs the element-wise check
        finite = np.isfinite(_add(qpos, axis=1) + _add(qvel, axis=1))
        for i in np.flatnonzero(~finite).tolist():
            finite[i] = bool(np.isfinite(qpos[i]).all() and np.isfinite(qvel[i]).all())
        n = rows.n
        rewards = [np.empty(n), np.empty(n)]
        terminated, truncated = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
        infos = []
        move0, move1 = move[0].tolist(), move[1].tolist()
        fallen0, fallen1 = fallen[0].tolist(), fallen[1].tolist()
        for i, game in enumerate(games):
            game._before_rules(rows, i)
            (r0, r1), info, done, trunc = game._conclude(
                (move0[i], move1[i]), [fallen0[i], fallen1[i]], bool(finite[i])
            )
            rewards[0][i], rewards[1][i] = r0, r1
            infos.append(info)
            terminated[i] = done and not trunc
            truncated[i] = trunc
        obs = [g._observe_rows(rows, 0), g._observe_rows(rows, 1)]
        return obs, rewards, terminated, truncated, infos


_add, _maximum, _minimum = np.add.reduce, np.maximum, np.minimum


def _norm2(x: float, y: float) -> float:
    """The length of ``(x, y)`` as ``_norm2_rows`` computes it for a row, on every CPU.

    Not ``v.dot(v)`` nor ``np.linalg.norm``: on CPUs with fused multiply-add (AVX-512
    here) numpy's dot rounds ``x*x + y*y`` once where two products and a sum round
    three times, so a copy stepped alone and the same copy in a batch differed in the
    last bit. Two products and a sum round the same way in Python and in numpy.
    """
    return math.sqrt(x * x + y * y)


def _norm2_rows(v: np.ndarray) -> np.ndarray:
    """``_norm2`` of each row of ``v`` (``(n, 2)``), bit for bit."""
    x, y = v[:, 0], v[:, 1]
    with np.errstate(over="ignore", invalid="ignore"):  # as quiet as Python's floats
        return np.sqrt(x * x + y * y)


_NO_ACTION = np.zeros(0)


def _layout(sources: list[tuple[np.ndarray, bool]]) -> list[tuple[slice, np.ndarray, bool]]:
    """Consecutive ``(destination, source view, clip)`` slots for the given sources."""
    plan, at = [], 0
    for view, clip in sources:
        plan.append((slice(at, at + view.size), view, clip))
        at += view.size
    return plan


def _name(mj: Any, m: Any, kind: Any, i: int) -> str:
    return mj.mj_id2name(m, kind, i) or ""


def _mass_centers_x(game: CompetitionEnv, rows: _Rows) -> np.ndarray:
    """Both seats' mass-weighted x, ``(n, 2)``: the humanoids' forward progress."""
    return np.stack((game._mass_center_x_rows(rows, 0), game._mass_center_x_rows(rows, 1)), axis=1)


_HUMAN_POSES = (((-1.0, 0.0, 1.4), sc.YAW_0), ((1.0, 0.0, 1.4), sc.YAW_180))


class _WalkerRewards:
    """Humanoid walker / ant runner move rewards (run-to-goal, the YSNP runner)."""

    def _walker(self: Any, k: int, a: np.ndarray, before: np.ndarray) -> tuple[float, bool]:
        z = self._z(k)
        if self.scene.agent == sc.HUMANOID:
            fwd = 0.25 * (self._progress[k] - before[k]) / self.model.opt.timestep
            goal_x = 4.0 if self._start_sign[k] > 0 else -4.0
            r = (
                self._start_sign[k] * fwd
                - self._ctrl_cost(k, a, 0.1, False)
                - self._contact_cost(k)
                + (5.0 if z >= 1.0 else -5.0)
                - abs(float(self._own_qpos[k][0]) - goal_x)
            )
            return r, z < 0.8
        fwd = (self._progress[k] - before[k]) / (self.model.opt.timestep * FRAME_SKIP)
        cf = np.clip(self._cfrc[k], -1.0, 1.0)
        r = (
            self._start_sign[k] * fwd
            - self._ctrl_cost(k, a, 0.5, False)
            - 0.5e-3 * float(np.square(cf).sum())
            + (1.0 if z >= 0.28 else -1.0)
        )
        return r, z < 0.28

    def _walker_rows(
        self: Any, rows: _Rows, k: int, a: np.ndarray, before: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        z = self._z_rows(rows, k)
        sign = rows.start_sign[:, k]
        if self.scene.agent == sc.HUMANOID:
            fwd = 0.25 * (rows.progress[:, k] - before[:, k]) / self.model.opt.timestep
            goal_x = np.where(sign > 0, 4.0, -4.0)
            r = (
                sign * fwd
                - self._ctrl_cost_rows(k, a, 0.1, False)
                - self._contact_cost_rows(rows, k)
                + np.where(z >= 1.0, 5.0, -5.0)
                - np.abs(self._xy_rows(rows, k)[:, 0] - goal_x)
            )
            return r, z < 0.8
        fwd = (rows.progress[:, k] - before[:, k]) / (self.model.opt.timestep * FRAME_SKIP)
        cf = rows.f["cfrc_ext"][:, self._seat[k].body].reshape(rows.n, -1)
        cf = _minimum(_maximum(cf, -1.0), 1.0)
        r = (
            sign * fwd
            - self._ctrl_cost_rows(k, a, 0.5, False)
            - 0.5e-3 * _add(cf * cf, axis=1)
            + np.where(z >= 0.28, 1.0, -1.0)
        )
        return r, z < 0.28


class RunToGoalEnv(_WalkerRewards, CompetitionEnv):
    """Run to the goal line behind the opponent (x = +4 for seat 0, −4 for seat 1).

    A seat scores when its center of mass is strictly beyond its goal; the first to
    score wins (both in the same step: a tie). Both fallen, or the step limit
    (500, our choice: the original has none): a tie.
    """

    seats = ("runner_0", "runner_1")

    def _progress_x(self) -> np.ndarray:
        if self.scene.agent == sc.HUMANOID:
            return np.array([self._mass_center_x(0), self._mass_center_x(1)])
        return np.array([self._subtree_x(0), self._subtree_x(1)])

    def _move_rewards(self, acts, before):
        out = [self._walker(k, acts[k], before) for k in range(2)]
        return [r for r, _ in out], [dn for _, dn in out]

    def _progress_rows(self, rows):
        if self.scene.agent == sc.HUMANOID:
            x = (self._mass_center_x_rows(rows, 0), self._mass_center_x_rows(rows, 1))
        else:
            x = (self._subtree_x_rows(rows, 0), self._subtree_x_rows(rows, 1))
        return np.stack(x, axis=1)

    def _move_rows(self, rows, acts, before):
        (r0, fell0), (r1, fell1) = (self._walker_rows(rows, k, acts[k], before) for k in range(2))
        return [r0, r1], [fell0, fell1]

    def _rules(self, agent_done):
        x = [self._subtree_x(0), self._subtree_x(1)]
        scored = [x[0] > 4.0, x[1] < -4.0]
        self._decided = any(scored) or all(agent_done)
        if scored[0] and scored[1]:
            self._end = "both scored"
            return [0.0, 0.0], None, [0.0, 0.0], True
        for k in range(2):
            if scored[k]:
                self._end = f"{self.seats[k]} scored"
                goal = [GOAL_REWARD if j == k else -GOAL_REWARD for j in range(2)]
                return goal, k, [0.0, 0.0], True
        if all(agent_done):
            self._end = "both fell"
        return [0.0, 0.0], None, [0.0, 0.0], all(agent_done)


class RunToGoalHumansEnv(RunToGoalEnv):
    metadata = {**CompetitionEnv.metadata, "name": "run_to_goal_humans_v0"}
    scene = sc.SceneConfig(sc.HUMANOID, _HUMAN_POSES)
    obs_size = 380


class RunToGoalAntsEnv(RunToGoalEnv):
    metadata = {**CompetitionEnv.metadata, "name": "run_to_goal_ants_v0", "render_fps": 20}
    scene = sc.SceneConfig(
        sc.ANT,
        (((-1.0, 0.0, 0.75), sc.YAW_0), ((1.0, 0.0, 0.75), sc.YAW_180)),
        timestep=0.01,
        solver="PGS",
    )
    obs_size = 122

    def __init__(self, *, solver: str = "PGS", **kwargs: Any):
        if solver not in ("PGS", "Newton"):
            raise ValueError(f"solver must be 'PGS' or 'Newton', got {solver!r}")
        if solver != "PGS":
            self.scene = sc.SceneConfig(sc.ANT, self.scene.poses, timestep=0.01, solver="NEWTON")
        super().__init__(**kwargs)


class YouShallNotPassEnv(_WalkerRewards, CompetitionEnv):
    """The runner (seat 1, from x = +1) must get past x = −4; the blocker (seat 0) stops it.

    Runner's center of mass beyond −4: the runner wins. Runner fallen (z ≤ 0.3):
    the blocker wins (+1000 only if it still stands above 0.3). Step limit: the
    blocker wins. Info-only shaping: the blocker gets ``|runner x + 4|``.
    """

    metadata = {**CompetitionEnv.metadata, "name": "you_shall_not_pass_v0"}
    seats = ("blocker", "runner")
    scene = sc.SceneConfig(sc.HUMANOID, _HUMAN_POSES)
    obs_size = 380

    def agent_order(self) -> tuple[str, ...]:
        return ("runner", "blocker")

    def _progress_x(self) -> np.ndarray:
        return np.array([self._mass_center_x(0), self._mass_center_x(1)])

    def _move_rewards(self, acts, before):
        z0 = self._z(0)
        blocker = (
            -self._ctrl_cost(0, acts[0], 0.1, False)
            - self._contact_cost(0)
            + (5.0 if z0 >= 1.0 else -5.0)
        )
        runner, runner_done = self._walker(1, acts[1], before)
        return [blocker, runner], [z0 <= 0.5, runner_done]

    def _progress_rows(self, rows):
        return _mass_centers_x(self, rows)

    def _move_rows(self, rows, acts, before):
        z0 = self._z_rows(rows, 0)
        blocker = (
            -self._ctrl_cost_rows(0, acts[0], 0.1, False)
            - self._contact_cost_rows(rows, 0)
            + np.where(z0 >= 1.0, 5.0, -5.0)
        )
        runner, runner_fell = self._walker_rows(rows, 1, acts[1], before)
        return [blocker, runner], [z0 <= 0.5, runner_fell]

    def _rules(self, agent_done):
        runner_x = self._subtree_x(1)
        shaping = [abs(float(self._own_qpos[1][0]) + 4.0), 0.0]
        self._decided = False
        if runner_x < -4.0:
            self._decided, self._end = True, "runner passed"
            return [-GOAL_REWARD, GOAL_REWARD], 1, shaping, True
        if self._z(1) <= 0.3:
            self._decided, self._end = True, "runner fell"
            blocker = GOAL_REWARD if self._z(0) > 0.3 else 0.0
            return [blocker, -GOAL_REWARD], 0, shaping, True
        if self.t >= self.max_steps:
            return [0.0, -GOAL_REWARD], 0, shaping, True
        return [0.0, 0.0], None, shaping, False


class SumoEnv(CompetitionEnv):
    """Push the other off the round arena or make it fall.

    A fall (torso at or below the arena top + 0.5 for humans, + 0.3 for ants) or
    leaving the ring loses. By default (Gleave et al. 2020) the other seat then wins
    even if the two never touched; ``contact_required=True`` is the original rule
    (no winner without prior contact). Step limit: a tie.
    """

    seats = ("fighter_0", "fighter_1")
    r_min: float
    r_max: float
    fall_margin: float

    def __init__(self, *, contact_required: bool = False, **kwargs: Any):
        self.contact_required = bool(contact_required)
        super().__init__(**kwargs)
        self._arena = self._mj.mj_name2id(self.model, self._mj.mjtObj.mjOBJ_GEOM, "arena")
        self.radius = self.r_max
        self._contact = False
        self._radii = (0.0, 0.0)

    def _before_noise(self, rng):
        self.radius = float(rng.uniform(self.r_min, self.r_max))
        self.model.geom_size[self._arena, 0] = self.radius

    def _place(self, rng):
        r, g = self.radius, 0.3 + self.r_min / 2
        for k, (lo, hi) in enumerate(((-r + g, -0.3), (0.3, r - g))):
            x = rng.uniform(lo, hi)
            half = np.sqrt(r * r - x * x)
            y = rng.uniform(-half + g, half - g)
            q = self._seat[k].qpos
            self.data.qpos[q.start] = x
            self.data.qpos[q.start + 1] = y

    def _after_reset(self):
        self._contact = False

    def _height(self, k: int) -> float:
        return self._z(k) - 2 * sc.ARENA_HALF_HEIGHT

    def _move_rewards(self, acts, before):
        rewards, done = [], []
        for k in range(2):
            h = self._height(k)
            if self.scene.agent == sc.HUMANOID:
                ctrl = self._ctrl_cost(k, acts[k], 0.1, True)
                alive = 5.0 if h >= 1.0 else -5.0
            else:
                ctrl = self._ctrl_cost(k, acts[k], 0.1, False)
                alive = 5.0 if h >= 0.28 else -5.0
            rewards.append(-self._radii[k] - ctrl - self._contact_cost(k) + alive)
            done.append(h <= self.fall_margin)
        return rewards, done

    def _move_rows(self, rows, acts, before):
        rewards, done = [], []
        for k in range(2):
            h = self._z_rows(rows, k) - 2 * sc.ARENA_HALF_HEIGHT
            if self.scene.agent == sc.HUMANOID:
                ctrl = self._ctrl_cost_rows(k, acts[k], 0.1, True)
                alive = np.where(h >= 1.0, 5.0, -5.0)
            else:
                ctrl = self._ctrl_cost_rows(k, acts[k], 0.1, False)
                alive = np.where(h >= 0.28, 5.0, -5.0)
            rewards.append(-rows.radii[:, k] - ctrl - self._contact_cost_rows(rows, k) + alive)
            done.append(h <= self.fall_margin)
        return rewards, done

    def _rules(self, agent_done):
        if self.contact_required and not self._contact:  # else contact changes nothing
            self._contact = self._agents_touching()
        fallen = [self._height(k) <= self.fall_margin for k in range(2)]
        out = [self._radii[k] > self.radius for k in range(2)]
        self._decided = True
        for lost, how in ((fallen, "fell"), (out, "pushed out")):
            if any(lost):
                who = " and ".join(self.seats[k] for k in range(2) if lost[k])
                self._end = f"{who} {how}"
                goal, winner = [0.0, 0.0], None
                for k in range(2):
                    if lost[k]:
                        goal[k] = -GOAL_REWARD
                    elif self._contact or not self.contact_required:
                        goal[k], winner = GOAL_REWARD, k
                return goal, winner, [0.0, 0.0], True
        self._decided = False
        if self.t >= self.max_steps:
            return [-GOAL_REWARD, -GOAL_REWARD], None, [0.0, 0.0], True
        return [0.0, 0.0], None, [0.0, 0.0], False

    def _observe(self, k: int) -> np.ndarray:
        out = np.empty(self.obs_size)
        self._standard_obs_into(k, out)
        at = self._plans[k][-1][0].stop
        own, other = self._own_qpos[k], self._own_qpos[1 - k]
        r = self.radius
        np.subtract(other[:2], own[:2], out=out[at : at + 2])
        out[at + 2 : at + 11] = self._xmat[k]
        out[at + 11 : at + 15] = (
            r,
            r - self._radii[k],
            r - self._radii[1 - k],
            float(self.max_steps - self.t),
        )
        return out

    def _after_physics(self) -> None:
        self._radii = (self._radius_xy(0), self._radius_xy(1))

    def _bind(self) -> None:
        super()._bind()
        self._xmat = [self.data.xmat[s.torso] for s in self._seat]

    def _observe_rows(self, rows, k):
        out = super()._observe_rows(rows, k)
        at = rows.plans[k][-1][0].stop
        np.subtract(self._xy_rows(rows, 1 - k), self._xy_rows(rows, k), out=out[:, at : at + 2])
        out[:, at + 2 : at + 11] = rows.f["xmat"][:, self._seat[k].torso]
        out[:, at + 11] = rows.radius
        out[:, at + 12] = rows.radius - rows.radii[:, k]
        out[:, at + 13] = rows.radius - rows.radii[:, 1 - k]
        out[:, at + 14] = self.max_steps - rows.t
        return out

    def _row_fields(self) -> tuple[str, ...]:
        return (*super()._row_fields(), "xmat")

    def _restart_row(self, rows, i):
        rows.radius[i] = self.radius

    def _after_physics_rows(self, rows):
        rows.radii = np.stack(
            (_norm2_rows(self._xy_rows(rows, 0)), _norm2_rows(self._xy_rows(rows, 1))),
            axis=1,
        )

    def _before_rules(self, rows, i):
        self._radii = rows.radii[i]


class SumoHumansEnv(SumoEnv):
    metadata = {**CompetitionEnv.metadata, "name": "sumo_humans_v0"}
    scene = sc.SceneConfig(
        sc.HUMANOID, (((-2.0, 0.0, 2.5), sc.YAW_0), ((2.0, 0.0, 2.5), sc.YAW_180)), arena=True
    )
    obs_size = 395
    r_min, r_max, fall_margin = 1.5, 3.5, 0.5


class SumoAntsEnv(SumoEnv):
    metadata = {**CompetitionEnv.metadata, "name": "sumo_ants_v0"}
    scene = sc.SceneConfig(
        sc.ANT, (((-1.0, 0.0, 2.5), sc.YAW_180), ((1.0, 0.0, 2.5), sc.YAW_180)), arena=True
    )
    obs_size = 137
    r_min, r_max, fall_margin = 2.5, 4.5, 0.3


class KickAndDefendEnv(CompetitionEnv):
    """The kicker (seat 0) must kick the ball into the goal at x = 4 (|y| ≤ 3).

    Goal: the kicker wins. The keeper wins on the step limit, when the ball crosses
    x = 4 outside the goal, or rolls back (vx < 0 at speed > 1), or when both agents
    have fallen; it loses (no winner: a tie) for straying more than 2.5 from the
    goal line. Info-only shaping: ``−|ball x − 4|`` to the kicker, ``+`` to the keeper.
    """

    metadata = {**CompetitionEnv.metadata, "name": "kick_and_defend_v0"}
    seats = ("kicker", "keeper")
    scene = sc.SceneConfig(
        sc.HUMANOID, (((-3.0, 0.0, 1.5), sc.YAW_0), ((3.0, 0.0, 1.5), sc.YAW_180)), football=True
    )
    obs_size = 384
    goal_x = 4.0

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        mj = self._mj
        self._ball_body = mj.mj_name2id(self.model, mj.mjtObj.mjOBJ_BODY, "ball")
        self._ball_geom = frozenset([mj.mj_name2id(self.model, mj.mjtObj.mjOBJ_GEOM, "ball")])
        self._touched = False

    def _place(self, rng):
        d = self.data
        for k, (lo, hi) in enumerate(((-3.5, -0.5), (1.6, 3.5))):
            q = self._seat[k].qpos
            d.qpos[q.start] = rng.uniform(lo, hi)
            d.qpos[q.start + 1] = rng.uniform(-2.0, 2.0)
        d.qpos[0:3] = [rng.uniform(-2.0, 1.0), rng.uniform(-4.0, 4.0), 0.35]
        if d.qvel[0] < 0:
            d.qvel[0:3] = 0.1

    def _after_reset(self):
        self._touched = False

    def _progress_x(self) -> np.ndarray:
        return np.array([self._mass_center_x(0), self._mass_center_x(1)])

    def _ball(self) -> np.ndarray:
        return self.data.qpos[0:3]

    def _move_rewards(self, acts, before):
        z0, z1 = self._z(0), self._z(1)
        fwd = 0.25 * (self._progress[0] - before[0]) / self.model.opt.timestep
        gx, gy = (self._ball()[:2] - self._xy(0)).tolist()
        to_ball = _norm2(gx, gy)
        kicker = (
            fwd
            - self._ctrl_cost(0, acts[0], 0.1, True)
            - self._contact_cost(0)
            + (5.0 if z0 >= 1.0 else -5.0)
            - to_ball
        )
        x1, y1 = self._xy(1)
        keeper_ok = z1 >= 1.0 and x1 <= 4.05 and abs(y1) <= 3.0
        keeper = (
            -self._ctrl_cost(1, acts[1], 0.1, True)
            - self._contact_cost(1)
            + (5.0 if keeper_ok else -5.0)
        )
        return [kicker, keeper], [z0 < 0.8, z1 <= 0.5]

    def _progress_rows(self, rows):
        return _mass_centers_x(self, rows)

    def _move_rows(self, rows, acts, before):
        z0, z1 = self._z_rows(rows, 0), self._z_rows(rows, 1)
        fwd = 0.25 * (rows.progress[:, 0] - before[:, 0]) / self.model.opt.timestep
        to_ball = _norm2_rows(rows.f["qpos"][:, 0:2] - self._xy_rows(rows, 0))
        kicker = (
            fwd
            - self._ctrl_cost_rows(0, acts[0], 0.1, True)
            - self._contact_cost_rows(rows, 0)
            + np.where(z0 >= 1.0, 5.0, -5.0)
            - to_ball
        )
        xy1 = self._xy_rows(rows, 1)
        keeper_ok = (z1 >= 1.0) & (xy1[:, 0] <= 4.05) & (np.abs(xy1[:, 1]) <= 3.0)
        keeper = (
            -self._ctrl_cost_rows(1, acts[1], 0.1, True)
            - self._contact_cost_rows(rows, 1)
            + np.where(keeper_ok, 5.0, -5.0)
        )
        return [kicker, keeper], [z0 < 0.8, z1 <= 0.5]

    def _rules(self, agent_done):
        if not self._touched:
            self._touched = self._touching(self._ball_geom, self._seat[1].geoms)
        ball = self._ball()
        vel = self.data.qvel[0:3]
        dist = abs(float(ball[0]) - self.goal_x)
        shaping = [-dist, dist]
        self._decided = True
        if ball[0] > self.goal_x and abs(ball[1]) <= 3.0:
            self._end = "goal"
            return [GOAL_REWARD, -GOAL_REWARD], 0, shaping, True
        vx, vy, vz = vel.tolist()
        back = vx < 0 and math.sqrt(vx * vx + vy * vy + vz * vz) > 1.0
        done = self.t >= self.max_steps or ball[0] > self.goal_x or back
        if done or all(agent_done):
            self._decided = self.t < self.max_steps
            if self.t >= self.max_steps:
                self._end = "step limit"
            elif ball[0] > self.goal_x:
                self._end = "ball wide of the goal"
            else:
                self._end = "ball sent back" if back else "both down"
            keeper = GOAL_REWARD + 500.0 * self._touched + 500.0 * (self._z(1) > 0.8)
            return [-GOAL_REWARD, keeper], 1, shaping, True
        if abs(self.goal_x - float(self._xy(1)[0])) > 2.5:
            self._end = "keeper foul"
            return [0.0, -GOAL_REWARD], None, shaping, True
        self._decided = False
        return [0.0, 0.0], None, shaping, False

    def _obs_sources(self, k: int) -> list[tuple[str, slice, bool]]:
        s = self._seat[k]
        return [
            ("qpos", slice(s.qpos.start + 2, s.qpos.stop), False),
            ("qvel", s.qvel, False),
            ("cinert", s.body, False),
            ("cvel", s.body, False),
            ("qfrc_actuator", s.qvel, False),
            ("cfrc_ext", s.body, True),
        ]

    def _observe(self, k: int) -> np.ndarray:
        out = np.empty(self.obs_size)
        self._standard_obs_into(k, out)
        at = self._plans[k][-1][0].stop
        own, other = self._own_qpos[k], self._own_qpos[1 - k]
        n = other.size
        out[at : at + n] = other
        out[at] -= own[0]
        out[at + 1] -= own[1]
        at += n
        ball = self._qpos
        out[at] = ball[0] - own[0]
        out[at + 1] = ball[1] - own[1]
        out[at + 2] = ball[2]
        out[at + 3] = self.goal_x - ball[0]
        out[at + 4] = 3.0 - ball[1]
        out[at + 5] = -3.0 - ball[1]
        return out

    def _observe_rows(self, rows, k):
        out = super()._observe_rows(rows, k)
        at = rows.plans[k][-1][0].stop
        q = rows.f["qpos"]
        own, other = self._seat[k].qpos, self._seat[1 - k].qpos
        n = other.stop - other.start
        out[:, at : at + n] = q[:, other]
        out[:, at] -= q[:, own.start]
        out[:, at + 1] -= q[:, own.start + 1]
        at += n
        out[:, at] = q[:, 0] - q[:, own.start]
        out[:, at + 1] = q[:, 1] - q[:, own.start + 1]
        out[:, at + 2] = q[:, 2]
        out[:, at + 3] = self.goal_x - q[:, 0]
        out[:, at + 4] = 3.0 - q[:, 1]
        out[:, at + 5] = -3.0 - q[:, 1]
        return out
