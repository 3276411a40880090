"""Unpickling that runs no code from the file.

Pickles can call any importable function. ``restricted_loads`` admits only an
explicit allow-list of globals (numpy array reconstruction, gymnasium spaces,
torch activation classes, SB3 policy classes, our own network classes); anything
else, ``os.system`` or ``builtins.eval`` included, raises ``UnsafePickleError``
before it is looked up, so nothing runs.
"""

from __future__ import annotations

import io
import pickle
from typing import Any


class UnsafePickleError(ValueError):
    """The pickle asks for a global outside the allow-list."""


# module -> allowed names ("*" = any class defined in that module).
_NUMPY = {
    "numpy": {"dtype", "ndarray", "float32", "float64", "int64", "int32", "uint8", "bool_"},
    "numpy.core.multiarray": {"_reconstruct", "scalar"},
    "numpy.core.numeric": {"_frombuffer"},
    "numpy._core.numeric": {"_frombuffer"},
    "numpy._core.multiarray": {"_reconstruct", "scalar"},
    "numpy.dtypes": {"*"},
    "numpy.random._pickle": {"__generator_ctor", "__bit_generator_ctor", "__randomstate_ctor"},
    "numpy.random._generator": {"Generator"},
    "numpy.random._pcg64": {"PCG64"},
    "numpy.random.bit_generator": {"SeedSequence", "__pyx_unpickle_SeedSequence"},
    "collections": {"OrderedDict"},
    "copyreg": {"_reconstructor"},
    "builtins": {"object", "tuple", "list", "dict", "set", "frozenset", "slice"},
}
_CLASSES = {
    "gymnasium.spaces.box": {"Box"},
    "gymnasium.spaces.discrete": {"Discrete"},
    "gymnasium.spaces.multi_discrete": {"MultiDiscrete"},
    "gymnasium.spaces.multi_binary": {"MultiBinary"},
    "gymnasium.spaces.dict": {"Dict"},
    "torch.nn.modules.activation": {"ReLU", "Tanh", "ELU", "LeakyReLU", "GELU", "SiLU"},
    "torch.optim.adam": {"Adam"},
    "torch.optim.rmsprop": {"RMSprop"},
    "stable_baselines3.common.policies": {
        "ActorCriticPolicy",
        "ActorCriticCnnPolicy",
        "MultiInputActorCriticPolicy",
    },
    "stable_baselines3.dqn.policies": {"DQNPolicy", "CnnPolicy", "MlpPolicy"},
    "stable_baselines3.common.torch_layers": {
        "NatureCNN",
        "FlattenExtractor",
        "CombinedExtractor",
    },
    "agents.networks": {"*"},
}
ALLOWED: dict[str, set[str]] = {**_NUMPY, **_CLASSES}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        allowed = ALLOWED.get(module)
        if allowed is None or ("*" not in allowed and name not in allowed):
            raise UnsafePickleError(
                f"refusing to load {module}.{name} from a pickle (not on the allow-list)"
            )
        obj = super().find_class(module, name)
        if "*" in allowed and not isinstance(obj, type):
            raise UnsafePickleError(f"refusing non-class {module}.{name} from a pickle")
        return obj


def restricted_loads(data: bytes) -> Any:
    """``pickle.loads`` that only reconstructs allow-listed objects."""
    try:
        return _RestrictedUnpickler(io.BytesIO(data)).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError) as exc:
        raise UnsafePickleError(f"not a loadable pickle: {exc}") from None
