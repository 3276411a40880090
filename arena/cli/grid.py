"""``arena grid``: one command over a grid of option values, locally or on Ray."""

from __future__ import annotations

import argparse
import json

from arena.errors import check_output_dir


def cmd_grid(args: argparse.Namespace) -> int:
    from arena.grid import run_grid

    out = check_output_dir(args.out, "--out")  # the directory checked is the one written
    summary = run_grid(
        args.grid_file, out, ray=args.ray, resume=args.resume, parallel=args.parallel
    )
    for row in summary["results"]:
        head = (row.get("summary") or {}).get("headline") or {}
        value = head.get("value")
        figure = f"{value:.3f}" if isinstance(value, int | float) else "–"
        if not args.json:
            print(f"{row['name']}  {row['state']:<7} {figure:>7}  {row.get('run_dir') or ''}")
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    else:
        print(
            f"{summary['done']} of {summary['cells']} cells done; report: arena report {args.out}"
        )
    return 0 if summary["failed"] == 0 else 1
