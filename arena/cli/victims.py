"""``arena victims`` and ``arena fetch``: the standard victims, listed and downloaded."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def cmd_victims(args: argparse.Namespace) -> int:
    from agents.home import arena_home
    from arena.victims import CATALOG, present

    rows = []
    for v in CATALOG.values():
        where = present(v)
        rows.append({**v.to_json(), "present": str(where) if where else None})
    if args.json:
        print(json.dumps({"home": str(arena_home()), "victims": rows}, sort_keys=True))
        return 0
    width = max(len(r["spec"]) for r in rows)
    for r in rows:
        mark = "present" if r["present"] else "absent "
        print(f"{r['spec']:<{width}}  {mark}  {r['licence']}  {r['what']}")
    print(f"fetch with `arena fetch NAME|zoo|atari|all` into {arena_home()} (ARENA_HOME)")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from arena.victims import fetch, select

    chosen = select(args.names)
    home = Path(args.dir).expanduser() if args.dir else None
    done = []
    for victim in chosen:
        path = fetch(victim, home=home, progress=not args.json)
        done.append(
            {"name": victim.name, "spec": f"{victim.kind}:{victim.name}", "path": str(path)}
        )
        if not args.json:
            print(f"{victim.kind}:{victim.name}  {path}  sha256 ok", file=sys.stderr)
    if args.json:
        print(json.dumps({"fetched": done}, sort_keys=True))
    return 0
