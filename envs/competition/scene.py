"""Scenes of the competitive MuJoCo games, composed with ``mujoco.MjSpec``.

Each agent is gymnasium's bundled ``humanoid.xml`` or ``ant.xml`` with the few
values the zoo bodies differ in (see ``../shared/zoo/GAMES.md`` §2), every name
prefixed ``agent<k>/``, placed into a world of our own (plain floor, sumo arena or
football pitch). Two physics facts of MuJoCo 1.31, which the zoo victims were
trained on, are reproduced:

* capsule mass *and* inertia: 1.31 treated a capsule as a solid cylinder of the
  same radius whose ends extend ``r/2`` beyond the segment. A shadow copy of each
  agent with its capsules so replaced is compiled, and its body inertials
  (mass, diagonal inertia, center of mass, inertia frame) are written into the
  real agent as explicit inertials;
* ``cfrc_ext`` is computed by the env (``mj_rnePostConstraint``), see ``games``.

``mujoco`` is imported here, so import this module only where physics is needed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# Offscreen rendering without a display: EGL, unless the user chose a backend.
os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco  # after choosing the GL backend, which mujoco reads on import
import numpy as np

HUMANOID, ANT = "humanoid", "ant"
YAW_0 = (1.0, 0.0, 0.0, 0.0)
YAW_180 = (0.0, 0.0, 0.0, 1.0)
ARENA_HALF_HEIGHT = 0.25
ARENA_MAX_RADIUS = 4.5


def _asset(name: str) -> Path:
    import gymnasium

    return Path(gymnasium.__file__).parent / "envs" / "mujoco" / "assets" / name


def _base_agent(kind: str) -> mujoco.MjSpec:
    """gymnasium's agent with the zoo's differences applied (no 1.31 inertia yet)."""
    if kind == HUMANOID:
        spec = mujoco.MjSpec.from_file(str(_asset("humanoid.xml")))
        joint = spec.joint("left_hip_y")
        joint.range = [-120.0, 20.0]  # the asset's compiler reads degrees
    elif kind == ANT:
        spec = mujoco.MjSpec.from_file(str(_asset("ant.xml")))
        for geom in spec.geoms:
            if geom.name != "floor":
                geom.conaffinity = 1  # the zoo's ants collide with each other
        # The ankle bodies are unnamed in the asset; they count in the agent's body lists.
        for i, leg in enumerate(
            ("front_left_leg", "front_right_leg", "back_leg", "right_back_leg"), start=1
        ):
            aux = spec.body(leg).first_body()
            aux.first_body().name = f"ankle_{i}_body"
        for numeric in list(spec.numerics):
            spec.delete(numeric)
    else:
        raise ValueError(f"unknown agent kind {kind!r}; valid: {HUMANOID}, {ANT}")
    for camera in list(spec.cameras):
        spec.delete(camera)
    return spec


Inertial = tuple[float, np.ndarray, np.ndarray, np.ndarray]
"""mass, principal inertia, center of mass and inertia frame of a body."""


def _mujoco131_inertials(spec: mujoco.MjSpec) -> dict[str, Inertial]:
    """Body inertials as MuJoCo 1.31 computed them (capsule = cylinder extended by r/2)."""
    shadow = spec.copy()
    for geom in shadow.geoms:
        if geom.type != mujoco.mjtGeom.mjGEOM_CAPSULE:
            continue
        radius = float(geom.size[0])
        if np.isnan(geom.fromto[0]):
            geom.size = [radius, float(geom.size[1]) + radius / 2, 0.0]
        else:
            a, b = np.array(geom.fromto[:3]), np.array(geom.fromto[3:])
            axis = (b - a) / np.linalg.norm(b - a)
            geom.fromto = np.concatenate([a - axis * radius / 2, b + axis * radius / 2])
        geom.type = mujoco.mjtGeom.mjGEOM_CYLINDER
    model = shadow.compile()
    out: dict[str, Inertial] = {}
    for body in range(1, model.nbody):
        name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, body) or ""
        out[name] = (
            float(model.body_mass[body]),
            model.body_inertia[body].copy(),
            model.body_ipos[body].copy(),
            model.body_iquat[body].copy(),
        )
    return out


def agent_spec(
    kind: str,
    *,
    pos: tuple[float, float, float],
    quat: tuple[float, ...],
    rgba: tuple[float, float, float, float] | None = None,
) -> mujoco.MjSpec:
    """One agent, with MuJoCo 1.31 body inertials, its torso at ``pos`` facing ``quat``."""
    spec = _base_agent(kind)
    inertials = _mujoco131_inertials(spec)
    spec.compiler.inertiafromgeom = mujoco.mjtInertiaFromGeom.mjINERTIAFROMGEOM_AUTO
    for body in spec.bodies:
        if body.name in inertials:
            mass, inertia, ipos, iquat = inertials[body.name]
            body.explicitinertial = True
            body.mass = mass
            body.inertia = inertia
            body.ipos = ipos
            body.iquat = iquat
    torso = spec.body("torso")
    torso.pos = list(pos)
    torso.quat = list(quat)
    if rgba is not None:
        for geom in spec.geoms:
            if geom.name != "floor":
                geom.rgba = list(rgba)
                geom.material = ""
    return spec


@dataclass(frozen=True)
class SceneConfig:
    """What distinguishes the scenes (GAMES.md §1, §3)."""

    agent: str
    poses: tuple[tuple[tuple[float, float, float], tuple[float, ...]], ...]
    timestep: float = 0.003
    solver: str = "PGS"
    arena: bool = False
    football: bool = False


SEAT_COLORS = ((0.85, 0.35, 0.25, 1.0), (0.25, 0.45, 0.85, 1.0))
"""RGBA of agent 0's and agent 1's body."""


def build_scene(config: SceneConfig) -> mujoco.MjSpec:
    """The world spec: floor, goal lines, optional arena or ball, then the two agents."""
    world = mujoco.MjSpec()
    world.modelname = "competition"
    world.compiler.degree = False
    world.compiler.inertiafromgeom = mujoco.mjtInertiaFromGeom.mjINERTIAFROMGEOM_AUTO
    opt = world.option
    opt.timestep = config.timestep
    opt.integrator = mujoco.mjtIntegrator.mjINT_RK4
    opt.solver = getattr(mujoco.mjtSolver, f"mjSOL_{config.solver}")
    opt.iterations = 1000
    world.visual.headlight.ambient = [0.4, 0.4, 0.4]
    world.visual.global_.offwidth = 640
    world.visual.global_.offheight = 480

    wb = world.worldbody
    wb.add_light(pos=[0, 0, 6], dir=[0, 0, -1], diffuse=[0.8, 0.8, 0.8])
    wb.add_geom(
        name="floor",
        type=mujoco.mjtGeom.mjGEOM_PLANE,
        size=[20, 20, 0.125],
        condim=3,
        friction=[1, 0.1, 0.1],
        rgba=[0.8, 0.9, 0.8, 1],
    )
    for name, x in (("rightgoal", 4.0), ("leftgoal", -4.0)):
        wb.add_geom(
            name=name,
            type=mujoco.mjtGeom.mjGEOM_CYLINDER,
            size=[0.03, 0, 0],
            fromto=[x, -5, 0, x, 5, 0],
            condim=3,
            rgba=[1, 1, 1, 0 if config.arena else 1],
        )
    if config.arena:
        wb.add_geom(
            name="arena",
            type=mujoco.mjtGeom.mjGEOM_CYLINDER,
            size=[ARENA_MAX_RADIUS, ARENA_HALF_HEIGHT, 0],
            pos=[0, 0, ARENA_HALF_HEIGHT],
            condim=3,
            friction=[1, 0.1, 0.1],
            rgba=[0.6, 0.5, 0.4, 1],
        )
    if config.football:
        wb.add_geom(
            name="goalpost",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[0.1, 3, 3],
            pos=[4.05, 0, 0],
            contype=0,
            conaffinity=0,
            rgba=[0.9, 0.9, 0.9, 0.3],
        )
        ball = wb.add_body(name="ball", pos=[0, 0, 0.2])
        ball.add_joint(name="ball", type=mujoco.mjtJoint.mjJNT_FREE, damping=0.001, armature=0.0)
        ball.add_geom(
            name="ball",
            type=mujoco.mjtGeom.mjGEOM_SPHERE,
            size=[0.15, 0, 0],
            mass=0.1,
            condim=3,
            margin=0.0,
            rgba=[1, 1, 1, 1],
        )
        ball.explicitinertial = True
        ball.mass = 0.1
        ball.inertia = [0.0009, 0.0009, 0.0009]
        ball.ipos = [0.0, 0.0, 0.0]  # MjSpec otherwise leaves the body's pos here
        ball.iquat = [1.0, 0.0, 0.0, 0.0]
    for k, (pos, quat) in enumerate(config.poses):
        agent = agent_spec(config.agent, pos=pos, quat=quat, rgba=SEAT_COLORS[k])
        # The world's options win; make the agent agree so attaching reports no conflict.
        agent.option.timestep = opt.timestep
        agent.option.iterations = opt.iterations
        agent.option.integrator = opt.integrator
        agent.option.solver = opt.solver
        agent.nkey = world.nkey
        agent.nuser_geom = world.nuser_geom
        frame = wb.add_frame()
        frame.attach_body(agent.body("torso"), f"agent{k}/", "")  # brings tendons, motors
    return world
