"""``zoo:PATH``: the agent-zoo victims of Bansal et al. (2018) as torch policies.

A zoo file is a pickle of ONE flat float32 array (``../shared/zoo/README.md``),
read by ``agents.safe_pickle.inert_loads``, which rebuilds the array itself: a file
that asks for anything else (``os.system``...) is refused and nothing of it runs.

The array holds, in order: return-normalization stats (3, unused), observation
normalization stats (sum D, sum of squares D, count 1), the value branch, the
policy branch (weights input-major: ``x @ W + b``) and the Gaussian's log-std (A).
Two architectures, told apart by the file's length for the seat's D and A:

* MLP: two hidden layers of 64 with tanh (130·D + 66·A + 8517 numbers);
* LSTM: a 128-unit ReLU layer, a 128-unit LSTM cell on ``[x, h]`` with gates in the
  order i, j, f, o and forget bias +1, then a linear head (258·D + 130·A + 263557).
  The state (zeros) resets where ``episode_start`` is true.

The network sees ``clip((obs − mean) / std, −5, 5)`` with ``std =
sqrt(max(sumsq/count − mean², 0.01))``; ``input_from_obs`` is the raw observation,
so observation attacks perturb the game's own units.

A relative path is looked up in the zoo directory named by ``ARENA_ZOO_DIR``.

>>> policy = load_zoo_policy("sumo/ants/agent_parameters-v1.pkl", obs_space, act_space)
... # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import distributions as D

from agents.policies import LOG_STD_RANGE, TorchPolicy, restarted
from agents.safe_pickle import UnsafePickleError, inert_loads
from agents.specs import PolicySpecError, register_kind

ZOO_DIR_ENV = "ARENA_ZOO_DIR"
MLP_HIDDEN = 64
LSTM_UNITS = 128
OBS_CLIP = 5.0


class ZooError(ValueError):
    """A zoo file that is missing, unsafe or malformed, or a zoo directory that is not set."""


class UnsafeZooFileError(ZooError):
    """The pickle holds something other than one numpy array, or is malformed."""


def read_zoo_array(path: str | Path) -> np.ndarray:
    """The flat float32 parameter array of a zoo file, read without running its code
    (``agents.safe_pickle.inert_loads``: numpy's array reconstruction is re-done by
    our own code from the bytes; nothing the file names is imported or called)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ZooError(f"cannot read zoo file {path}: {exc}") from None
    try:
        obj = inert_loads(data, encoding="latin1")
    except UnsafePickleError as exc:
        raise UnsafeZooFileError(f"{path} is not a zoo parameter file: {exc}") from None
    if (
        not isinstance(obj, np.ndarray)
        or obj.ndim != 1
        or not np.issubdtype(obj.dtype, np.floating)
    ):
        raise ZooError(f"{path} is not a zoo parameter file (want one flat float array)")
    if not np.isfinite(obj).all():
        raise ZooError(f"{path}: the parameters hold NaN or infinite values")
    return obj.astype(np.float32)


def zoo_dir() -> Path:
    """The zoo directory named by ``ARENA_ZOO_DIR`` (``ZooError`` if unset or missing)."""
    value = os.environ.get(ZOO_DIR_ENV, "").strip()
    if not value:
        raise ZooError(
            f"no zoo directory: set {ZOO_DIR_ENV} to the folder holding the agent zoo "
            "(e.g. ../shared/zoo), run `arena fetch zoo`, or give the file's path"
        )
    path = Path(value).expanduser()
    if not path.is_dir():
        raise ZooError(
            f"zoo directory {path} ({ZOO_DIR_ENV}) does not exist; set {ZOO_DIR_ENV} to "
            "the folder holding the agent zoo, or give the file's path"
        )
    return path


def resolve_zoo_path(arg: str) -> Path:
    """``arg`` as given if it exists (or is absolute), else relative to the zoo directory
    (``$ARENA_ZOO_DIR``), else in the cache ``arena fetch`` fills (``agents.home``)."""
    from agents.home import cached

    path = Path(arg).expanduser()
    if path.is_absolute() or path.exists():
        if not path.is_file():
            raise ZooError(f"zoo file not found: {path}")
        return path
    try:
        root = zoo_dir()
    except ZooError:
        found = cached("zoo", path)
        if found is not None:
            return found
        raise
    full = root / path
    if not full.resolve().is_relative_to(root.resolve()):
        raise ZooError(f"zoo:{arg} leads outside the zoo directory {root}")
    if not full.is_file():
        found = cached("zoo", path)
        if found is not None:
            return found
        raise ZooError(f"zoo file not found: {path} (looked in {full.parent})")
    return full


def mlp_size(d: int, a: int) -> int:
    return 130 * d + 66 * a + 8517


def lstm_size(d: int, a: int) -> int:
    return 258 * d + 130 * a + 263557


class _Reader:
    def __init__(self, flat: np.ndarray):
        self.flat, self.pos = flat, 0

    def take(self, *shape: int) -> torch.Tensor:
        n = int(np.prod(shape))
        out = self.flat[self.pos : self.pos + n].reshape(shape)
        self.pos += n
        return torch.from_numpy(out.copy())


class ZooPolicy(TorchPolicy):
    """A zoo victim: observation normalization, MLP or LSTM, diagonal Gaussian.

    ``forward(x, state, episode_start)`` takes raw observations ``(N, D)``; for the
    LSTM the state is a tensor ``(N, 4, 128)``: (cell, hidden) of the policy branch,
    then (cell, hidden) of the value branch, which has its own LSTM; both advance on
    every observation, as in the original agent, and are zeros where
    ``episode_start`` is true. ``value(x, state)`` is the value branch's estimate for
    ``x`` after the observations ``state`` has seen (the carried value LSTM: a zero
    state at every step estimates as if each observation began an episode).
    """

    def __init__(
        self,
        flat: np.ndarray,
        observation_space: spaces.Box,
        action_space: spaces.Box,
        *,
        source: str = "<array>",
    ):
        d = int(np.prod(observation_space.shape))
        a = int(np.prod(action_space.shape))
        self.observation_space = observation_space
        self.action_space = action_space
        self.source = source
        if flat.size == mlp_size(d, a):
            self.arch = "mlp"
        elif flat.size == lstm_size(d, a):
            self.arch = "lstm"
        else:
            raise PolicySpecError(
                f"{source}: {flat.size} parameters fit neither zoo network for this seat "
                f"(observation size {d}, action size {a}: MLP needs {mlp_size(d, a)}, "
                f"LSTM needs {lstm_size(d, a)}); is it a file for another game or seat?"
            )
        self.recurrent = self.arch == "lstm"
        r = _Reader(flat)
        r.take(3)  # return normalization: unused when acting
        obs_sum, obs_sumsq, count = r.take(d), r.take(d), r.take(1)
        self.obs_mean = obs_sum / count
        self.obs_std = torch.sqrt(torch.clamp(obs_sumsq / count - self.obs_mean**2, min=0.01))
        if self.arch == "mlp":
            h = MLP_HIDDEN
            self.vf = [r.take(d, h), r.take(h), r.take(h, h), r.take(h), r.take(h, 1), r.take(1)]
            self.pi = [r.take(d, h), r.take(h), r.take(h, h), r.take(h), r.take(h, a), r.take(a)]
        else:
            u = LSTM_UNITS
            self.vf = [
                r.take(d, u),
                r.take(u),
                r.take(2 * u, 4 * u),
                r.take(4 * u),
                r.take(u, 1),
                r.take(1),
            ]
            self.pi = [
                r.take(d, u),
                r.take(u),
                r.take(2 * u, 4 * u),
                r.take(4 * u),
                r.take(u, a),
                r.take(a),
            ]
        self.log_std = r.take(a)
        assert r.pos == flat.size, "zoo layout consumed the wrong number of parameters"
        low, high = LOG_STD_RANGE
        if not bool(((self.log_std >= low) & (self.log_std <= high)).all()):
            raise ZooError(f"{source}: log-std must lie in [{low:g}, {high:g}]")
        self._low = np.asarray(action_space.low, dtype=np.float32)
        self._high = np.asarray(action_space.high, dtype=np.float32)
        with torch.no_grad():  # a neutral observation: outputs that overflow are refused
            z = self.normalize(torch.zeros(1, d))
            if self.recurrent:
                out = [
                    self._lstm(w, z, torch.zeros(1, 2, LSTM_UNITS))[0] for w in (self.pi, self.vf)
                ]
            else:
                out = [self._mlp(w, z) for w in (self.pi, self.vf)]
            if not all(bool(torch.isfinite(o).all()) for o in out):
                raise ZooError(f"{source}: the network's outputs are not finite")

    # ---- TorchPolicy -----------------------------------------------------------------
    def input_from_obs(self, observation: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(observation, dtype=np.float32))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp((x - self.obs_mean) / self.obs_std, -OBS_CLIP, OBS_CLIP)

    def input_scale(self) -> torch.Tensor:
        return self.obs_std

    def interval_steps(self) -> list[Any] | None:
        if self.recurrent:
            return None  # an LSTM's state: not listed
        from agents.certify import Affine, Clamp, Normalize

        w = self.pi
        return [
            Normalize(self.obs_mean, self.obs_std),
            Clamp(-OBS_CLIP, OBS_CLIP),
            Affine(w[0], w[1]),
            "tanh",
            Affine(w[2], w[3]),
            "tanh",
            Affine(w[4], w[5]),
        ]

    def initial_state(self, n: int) -> torch.Tensor:
        """Zeros ``(n, 4, 128)``: the policy LSTM's (cell, hidden), then the value LSTM's."""
        return torch.zeros(n, 4, LSTM_UNITS)

    def _state(self, n: int, state: Any, episode_start: np.ndarray | None) -> torch.Tensor:
        if state is None:
            return self.initial_state(n)
        state = torch.as_tensor(state, dtype=torch.float32)
        if state.ndim != 3 or state.shape[1:] != (4, LSTM_UNITS) or state.shape[0] != n:
            raise ValueError(
                f"a zoo LSTM state is ({n}, 4, {LSTM_UNITS}) (policy then value LSTM), "
                f"got {tuple(state.shape)}"
            )
        return restarted(state, episode_start)

    @staticmethod
    def _lstm(w: list[torch.Tensor], x: torch.Tensor, state: torch.Tensor):
        hidden = torch.relu(x @ w[0] + w[1])
        c, h = state[:, 0], state[:, 1]
        gates = torch.cat([hidden, h], dim=1) @ w[2] + w[3]
        i, j, f, o = gates.chunk(4, dim=1)
        c_new = c * torch.sigmoid(f + 1.0) + torch.sigmoid(i) * torch.tanh(j)
        h_new = torch.tanh(c_new) * torch.sigmoid(o)
        return h_new @ w[4] + w[5], torch.stack([c_new, h_new], dim=1)

    def _advance(self, z: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The policy's output on ``z`` and the next state: both LSTMs take the step (the
        value branch without a graph: nothing acts on it)."""
        mean, pi_state = self._lstm(self.pi, z, state[:, :2])
        with torch.no_grad():
            _, vf_state = self._value_step(z.detach(), state[:, 2:].detach())
        return mean, torch.cat([pi_state, vf_state], dim=1)

    _memo: tuple[torch.Tensor, ...] | None = None

    def _value_step(
        self, z: torch.Tensor, state: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The value LSTM's step without a graph: ``(value, next state)``. A value read
        (``value``: a reward term, after a step) takes the very step the next
        ``predict`` takes on the same observation and state, so the last step is kept
        and given again for equal inputs (``torch.equal``; the same arithmetic would
        give the same bits): the LSTM runs once a step instead of twice."""
        memo = self._memo
        if (
            memo is not None
            and memo[0].shape == z.shape
            and memo[1].shape == state.shape
            and torch.equal(memo[0], z)
            and torch.equal(memo[1], state)
        ):
            return memo[2], memo[3]
        out, new = self._lstm(self.vf, z, state)
        self._memo = (z.clone(), state.clone(), out, new)
        return out, new

    @staticmethod
    def _mlp(w: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(x @ w[0] + w[1])
        h = torch.tanh(h @ w[2] + w[3])
        return h @ w[4] + w[5]

    def forward(
        self, x: torch.Tensor, state: Any = None, episode_start: np.ndarray | None = None
    ) -> tuple[D.Distribution, Any]:
        z = self.normalize(x)
        if self.recurrent:
            mean, new_state = self._advance(z, self._state(x.shape[0], state, episode_start))
        else:
            mean, new_state = self._mlp(self.pi, z), None
        std = torch.exp(self.log_std).expand_as(mean)
        return D.Independent(D.Normal(mean, std), 1), new_state

    # ---- fast acting: the same arithmetic as ``forward``, without distribution objects -
    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        """Actions for raw observations ``(N, D)`` or ``(D,)``, exactly as ``forward`` gives.

        ``forward`` builds torch distribution objects (validated, tens of microseconds
        each); acting needs only the mean and ``mean + std · randn``, which is how
        ``Normal.sample`` draws from torch's global generator. So the actions, the
        random stream and the recurrent state are those of the generic path, at a
        fraction of the cost (the evaluation loop calls this every step).
        """
        obs = np.asarray(observation, dtype=np.float32)
        batched = obs.ndim == 2
        if not batched:
            obs = obs.reshape(1, -1)
        with torch.no_grad():
            x = torch.from_numpy(obs)
            z = self.normalize(x)
            if self.recurrent:
                st = self._state(x.shape[0], state, episode_start)
                mean, new_state = self._advance(z, st)
            else:
                mean, new_state = self._mlp(self.pi, z), None
            if not deterministic:
                std = torch.exp(self.log_std).expand_as(mean)
                mean = torch.randn(mean.shape, dtype=mean.dtype).mul_(std).add_(mean)
        out = np.clip(mean.numpy(), self._low, self._high).astype(np.float32, copy=False)
        return (out if batched else out[0]), new_state

    def value(self, x: torch.Tensor, state: Any = None) -> torch.Tensor | None:
        z = self.normalize(x)
        if self.recurrent:
            st = self._state(x.shape[0], state, None)
            if torch.is_grad_enabled():
                return self._lstm(self.vf, z, st[:, 2:])[0][:, 0]
            return self._value_step(z, st[:, 2:])[0][:, 0]
        return self._mlp(self.vf, z)[:, 0]

    def __repr__(self) -> str:
        return f"ZooPolicy({self.arch}, {self.source})"


def sb3_lstm_kwargs() -> dict[str, Any]:
    """``policy_kwargs`` of the SB3 (sb3-contrib ``RecurrentPPO``) network shaped as the
    zoo's LSTM policies: a dense ReLU layer, an LSTM of 128 units and a linear head,
    for the actor and (its own copy of each) the critic."""
    from agents.networks import DenseReLU

    return {
        "net_arch": [],
        "features_extractor_class": DenseReLU,
        "features_extractor_kwargs": {"features_dim": LSTM_UNITS},
        "share_features_extractor": False,
        "lstm_hidden_size": LSTM_UNITS,
        "n_lstm_layers": 1,
        "enable_critic_lstm": True,
        "shared_lstm": False,
    }


def _lstm_gates(w: torch.Tensor) -> torch.Tensor:
    """The zoo's gate blocks (i, j, f, o) along the last axis as torch's (i, f, g=j, o)."""
    i, j, f, o = w.chunk(4, dim=-1)
    return torch.cat([i, f, j, o], dim=-1)


def to_sb3(policy: ZooPolicy) -> tuple[Any, dict[str, Any]]:
    """A zoo policy as an SB3 model plus its ``VecNormalize`` statistics.

    An MLP policy becomes a PPO ``MlpPolicy`` (separate 64-64 tanh policy and value
    networks); an LSTM policy a ``RecurrentPPO`` (sb3-contrib) network of the same
    shape (``sb3_lstm_kwargs``: torch's LSTM with the zoo's gates reordered and its
    forget bias of +1 folded into the bias). Both keep the zoo's weights and log-std;
    the statistics (``obs_mean``, ``obs_var``, ``obs_count``, ``clip_obs``, ``epsilon``)
    are the zoo's observation normalization as SB3 computes it (variance
    ``max(var, 0.01) − ε``, clip 5), so that together they act exactly as the zoo
    policy: that is how a zoo victim is fine-tuned (``arena finetune-victim``).
    """
    import gymnasium
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    class _Env(gymnasium.Env):
        observation_space = policy.observation_space
        action_space = policy.action_space

    pi, vf = policy.pi, policy.vf
    model: Any
    if policy.recurrent:
        from sb3_contrib import RecurrentPPO

        model = RecurrentPPO(
            "MlpLstmPolicy", DummyVecEnv([_Env]), policy_kwargs=sb3_lstm_kwargs(), device="cpu"
        )
        sd = model.policy.state_dict()
        u = LSTM_UNITS
        forget = torch.zeros(4 * u)
        forget[u : 2 * u] = 1.0  # torch's order (i, f, g, o): the zoo adds 1 to f
        for tag, lstm, w in (("pi", "lstm_actor", pi), ("vf", "lstm_critic", vf)):
            # SB3 names the actor's extractor twice (features_extractor is pi's)
            for name in [f"{tag}_features_extractor"] + (
                ["features_extractor"] if tag == "pi" else []
            ):
                sd[f"{name}.linear.1.weight"], sd[f"{name}.linear.1.bias"] = w[0].T, w[1]
            sd[f"{lstm}.weight_ih_l0"] = _lstm_gates(w[2][:u]).T
            sd[f"{lstm}.weight_hh_l0"] = _lstm_gates(w[2][u:]).T
            sd[f"{lstm}.bias_ih_l0"] = _lstm_gates(w[3]) + forget
            sd[f"{lstm}.bias_hh_l0"] = torch.zeros(4 * u)
    else:
        model = PPO(
            "MlpPolicy",
            DummyVecEnv([_Env]),
            policy_kwargs={"net_arch": [MLP_HIDDEN, MLP_HIDDEN]},
            device="cpu",
        )
        sd = model.policy.state_dict()
        for prefix, w in (("mlp_extractor.policy_net", pi), ("mlp_extractor.value_net", vf)):
            sd[f"{prefix}.0.weight"], sd[f"{prefix}.0.bias"] = w[0].T, w[1]
            sd[f"{prefix}.2.weight"], sd[f"{prefix}.2.bias"] = w[2].T, w[3]
    sd["action_net.weight"], sd["action_net.bias"] = pi[4].T, pi[5]
    sd["value_net.weight"], sd["value_net.bias"] = vf[4].T, vf[5]
    sd["log_std"] = policy.log_std.clone()
    model.policy.load_state_dict({k: v.contiguous().float() for k, v in sd.items()})
    eps = 1e-8
    stats = {
        "obs_mean": policy.obs_mean.double().numpy(),
        "obs_var": (policy.obs_std.double() ** 2).numpy() - eps,
        "obs_count": 1e6,
        "clip_obs": float(OBS_CLIP),
        "epsilon": eps,
    }
    return model, stats


def load_zoo_policy(
    path: str | Path, observation_space: spaces.Space, action_space: spaces.Space
) -> ZooPolicy:
    """Load a zoo file (absolute, existing, or relative to ``ARENA_ZOO_DIR``) for a seat."""
    if not isinstance(observation_space, spaces.Box) or not isinstance(action_space, spaces.Box):
        raise PolicySpecError(
            "zoo policies need Box observation and action spaces (the competitive MuJoCo games)"
        )
    full = resolve_zoo_path(str(path))
    return ZooPolicy(read_zoo_array(full), observation_space, action_space, source=str(path))


def _loader(
    arg: str, observation_space: spaces.Space, action_space: spaces.Space, **context: Any
) -> ZooPolicy:
    return load_zoo_policy(arg, observation_space, action_space)


register_kind(
    "zoo",
    _loader,
    takes_path=True,
    locate=resolve_zoo_path,
    help=f"an agent-zoo .pkl of Bansal et al. 2018 (relative paths: in ${ZOO_DIR_ENV})",
)
