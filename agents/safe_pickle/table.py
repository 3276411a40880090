"""The table of stand-ins: the only (module, name) pairs a pickle may name.

Every entry is one of our inert stand-ins (``standins``) or a ``Global`` token;
there are no dotted names and no wildcards, so no attribute chain can be walked.
"""

from __future__ import annotations

import re
from typing import Any

from agents.safe_pickle import standins as s
from agents.safe_pickle.tokens import Global, UnsafePickleError

SPACES = {
    ("gymnasium.spaces.box", "Box"),
    ("gymnasium.spaces.discrete", "Discrete"),
    ("gymnasium.spaces.multi_discrete", "MultiDiscrete"),
    ("gymnasium.spaces.multi_binary", "MultiBinary"),
    ("gymnasium.spaces.dict", "Dict"),
    ("gymnasium.spaces.tuple", "Tuple"),
}

# Classes the *caller* may ask for by name; they stay Global tokens here.
TOKENS = {
    ("numpy", "ndarray"),
    ("builtins", "object"),
    ("stable_baselines3.common.policies", "ActorCriticPolicy"),
    ("stable_baselines3.common.policies", "ActorCriticCnnPolicy"),
    ("stable_baselines3.common.policies", "MultiInputActorCriticPolicy"),
    ("stable_baselines3.dqn.policies", "DQNPolicy"),
    ("stable_baselines3.dqn.policies", "CnnPolicy"),
    ("stable_baselines3.dqn.policies", "MultiInputPolicy"),
    ("sb3_contrib.common.recurrent.policies", "RecurrentActorCriticPolicy"),
    ("stable_baselines3.common.torch_layers", "NatureCNN"),
    ("stable_baselines3.common.torch_layers", "FlattenExtractor"),
    ("stable_baselines3.common.torch_layers", "CombinedExtractor"),
    ("agents.networks", "SmallCNN"),
    ("agents.networks", "DenseReLU"),
    ("torch.optim.adam", "Adam"),
    ("torch.optim.rmsprop", "RMSprop"),
    ("numpy.random._pcg64", "PCG64"),
    ("numpy.random.bit_generator", "SeedSequence"),
    *(
        ("torch.nn.modules.activation", n)
        for n in ("ReLU", "Tanh", "ELU", "LeakyReLU", "GELU", "SiLU")
    ),
    *(("torch", n) for n in s.TORCH_STORAGES),
}

TABLE: dict[tuple[str, str], Any] = {
    **{key: Global for key in TOKENS},
    **{key: s.space_class(key[1]) for key in SPACES},
    ("numpy", "dtype"): s.DType,
    ("numpy.core.multiarray", "_reconstruct"): s.Array,
    ("numpy._core.multiarray", "_reconstruct"): s.Array,
    ("numpy.core.multiarray", "scalar"): s.scalar,
    ("numpy._core.multiarray", "scalar"): s.scalar,
    ("numpy.core.numeric", "_frombuffer"): s.frombuffer,
    ("numpy._core.numeric", "_frombuffer"): s.frombuffer,
    ("numpy.random._pickle", "__generator_ctor"): s.Opaque,
    ("numpy.random._pickle", "__bit_generator_ctor"): s.Opaque,
    ("numpy.random._pickle", "__randomstate_ctor"): s.Opaque,
    ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"): s.Opaque,
    ("collections", "OrderedDict"): s.StateDict,
    ("_codecs", "encode"): s.latin1,
    ("copyreg", "_reconstructor"): s.reconstructor,
    ("torch._utils", "_rebuild_tensor_v2"): s.rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): s.rebuild_parameter,
}

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def well_formed(module: Any, name: Any) -> bool:
    """A plain dotted module path and a plain name (no attribute chain in the name)."""
    return (
        isinstance(module, str)
        and isinstance(name, str)
        and len(module) <= 200
        and len(name) <= 100
        and bool(_MODULE.match(module))
        and bool(_NAME.match(name))
    )


def lookup(module: Any, name: Any) -> Any:
    """The table's entry for exactly ``(module, name)`` (a fresh token for a class)."""
    if not (
        isinstance(module, str)
        and isinstance(name, str)
        and _MODULE.match(module)
        and _NAME.match(name)
        and (module, name) in TABLE
    ):
        raise UnsafePickleError(f"refusing global {module!s:.60}.{name!s:.60} (not in the table)")
    entry = TABLE[(module, name)]
    return Global(module, name) if entry is Global else entry
