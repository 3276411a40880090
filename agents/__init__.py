"""Who acts: policies, pretrained-victim loaders and observation attacks.

Imports nothing of the project except ``envs``' types.
"""

from agents.policies import Policy, RandomPolicy, TorchPolicy, ZeroPolicy
from agents.specs import PolicyRef, PolicySpecError, reference, resolve

__all__ = [
    "Policy",
    "PolicyRef",
    "PolicySpecError",
    "RandomPolicy",
    "TorchPolicy",
    "ZeroPolicy",
    "reference",
    "resolve",
]
