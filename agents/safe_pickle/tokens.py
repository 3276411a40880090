"""Inert class references: what a pickle's globals become, and how a caller maps them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class UnsafePickleError(ValueError):
    """The pickle is malformed or asks for something outside the table of stand-ins."""


@dataclass(frozen=True, slots=True)
class Global:
    """An inert reference to a global named by the pickle (never imported here)."""

    module: str
    name: str

    def __str__(self) -> str:
        return f"{self.module}.{self.name}"

    def __setstate__(self, state: Any) -> None:
        raise UnsafePickleError(f"refusing to change the class reference {self} (BUILD on a token)")


NDARRAY = Global("numpy", "ndarray")
OBJECT = Global("builtins", "object")


def resolve_token(token: Any, table: dict[tuple[str, str], Any], what: str) -> Any:
    """The real class for a ``Global`` token, from the caller's explicit table.

    The class found must really be defined where the token says (``__module__`` and
    ``__qualname__``), so a re-exported alias cannot stand in for another object.
    """
    if not isinstance(token, Global) or (token.module, token.name) not in table:
        names = ", ".join(sorted(f"{m}.{n}" for m, n in table))
        raise UnsafePickleError(f"{what} {token!s:.80} is not one of: {names}")
    obj = table[(token.module, token.name)]
    if getattr(obj, "__module__", None) != token.module or obj.__qualname__ != token.name:
        raise UnsafePickleError(f"{what} {token} is not defined where it claims")
    return obj
