"""Reading the pickles inside policy files without unpickling anything real.

Threat model
------------
A policy file (an SB3 ``.zip``, its ``policy.pth``, a zoo ``.pkl``) is untrusted
input: whoever wrote it controls every byte. A pickle is a program for a stack
machine whose only dangerous instructions are the ones that fetch a global
(``GLOBAL``, ``STACK_GLOBAL``, ``INST``, ``OBJ``, the ``EXT`` codes) and then call
it (``REDUCE``, ``NEWOBJ``, ``BUILD`` through ``__setstate__``). Allow-listing
*real* globals is not enough: an allowed callable can be reached with crafted
arguments, a dotted name or a ``"*"`` entry walks attribute chains to ``exec``,
and ``BUILD`` runs the class's own ``__setstate__`` on attacker data.

So the unpickler is never handed a real global. ``find_class`` resolves only exact
``(module, name)`` pairs from ``table.TABLE`` (no dotted names, no wildcards), and
every entry there is one of *our* inert stand-ins:

* a ``Global`` token (``tokens``) for classes the caller may want (policy classes,
  activation functions): a frozen record of the two strings, not callable, not a
  type, so ``REDUCE``/``NEWOBJ`` on it fail; the caller maps it to a real class
  through its own explicit table (``resolve_token``, which checks
  ``__module__``/``__qualname__``);
* small functions and record classes (``standins``) that rebuild numpy arrays,
  dtypes, torch tensors and gymnasium spaces from plain data, validating every
  argument (numeric dtypes only, shapes and strides bounded by the bytes present);
* ``Opaque`` for state the caller never needs (the spaces' random generators): it
  swallows its arguments and becomes ``None``.

Before the unpickler runs, ``scan`` checks the opcode stream (``pickletools``, which
parses and runs nothing): only the opcodes in ``scan.OPCODES`` are admitted, and
memo indices, the stream's length and its opcode count are bounded. After it,
``materialize`` converts the records into real objects and refuses anything that is
not plain data (``None``, bools, numbers, strings, bytes, lists, tuples, dicts,
numeric arrays and tensors) or a ``Global`` token. ``torchfile`` reads
``torch.save``'s zip files the same way.

The only code that ever runs on the file's data is therefore this package's and the
pickle machine's own container operations: there is nothing importable to reach.
Every refusal is ``UnsafePickleError`` with one line saying why.
"""

from agents.safe_pickle.materialize import MAX_DEPTH, MAX_NODES, materialize
from agents.safe_pickle.scan import MAX_OPCODES, MAX_PICKLE_BYTES, scan
from agents.safe_pickle.standins import MAX_NDIM, StateDict
from agents.safe_pickle.table import TABLE, TOKENS
from agents.safe_pickle.tokens import NDARRAY, OBJECT, Global, UnsafePickleError, resolve_token
from agents.safe_pickle.torchfile import read_torch_file, read_torch_weights
from agents.safe_pickle.unpickler import inert_loads

_TABLE = TABLE  # the name the fuzz tests know it by

__all__ = [
    "MAX_DEPTH",
    "MAX_NDIM",
    "MAX_NODES",
    "MAX_OPCODES",
    "MAX_PICKLE_BYTES",
    "NDARRAY",
    "OBJECT",
    "TABLE",
    "TOKENS",
    "Global",
    "StateDict",
    "UnsafePickleError",
    "inert_loads",
    "materialize",
    "read_torch_file",
    "read_torch_weights",
    "resolve_token",
    "scan",
]
