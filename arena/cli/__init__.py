"""The ``arena`` command.

Every user error (unknown env, seat, policy or attack, missing or corrupted file,
bad number) prints one line ``arena: error: ...`` naming the valid choices and exits
with status 2. Nothing half-written is left behind: outputs are written atomically.

The modules: ``parser`` (the subcommands and their flags), ``options`` (argument
types shared with the experiments), and the commands by topic: ``play`` (envs,
evaluate), ``records`` (replay, report), ``train`` (train-adversary,
finetune-victim) and ``run`` (demo, and the experiments registered as entry points).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence

from arena.errors import USER_ERRORS

__all__ = ["main", "run_guarded"]


def run_guarded(command: Callable[[], int | None], *, verbose: bool = False) -> int:
    """Run ``command`` as ``arena`` runs each of its commands: logging configured, one
    torch thread, a user error printed as one line ``arena: error: ...`` (exit status
    2), Ctrl-C as ``arena: interrupted`` (130). An experiment run by itself
    (``python -m experiments.NAME``) goes through here too."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    import torch

    torch.set_num_threads(1)
    try:
        return int(command() or 0)
    except USER_ERRORS as exc:
        lines = str(exc).strip().splitlines()
        print(f"arena: error: {lines[0] if lines else type(exc).__name__}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("arena: interrupted", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    from arena.cli.parser import build_parser

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return run_guarded(lambda: args.func(args), verbose=args.verbose)
