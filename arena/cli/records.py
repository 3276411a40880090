"""``arena replay`` and ``arena report``: list, re-simulate and render recorded
episodes; write a run's HTML page."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from arena.errors import UsageError, check_output_dir


def cmd_replay(args: argparse.Namespace) -> int:
    from arena.recording import read_episode, read_manifest
    from arena.replay import resimulate

    if args.video:
        return _replay_video(args)
    for flag, given in (("--fps", args.fps is not None), ("--no-verify", args.no_verify)):
        if given:
            raise UsageError(f"{flag} applies only with --video OUT.mp4|OUT.gif")
    manifest = read_manifest(args.path)
    n = len(manifest.episodes)
    positions = [args.episode] if args.episode is not None else list(range(n))
    for p in positions:
        if not 0 <= p < n:
            raise UsageError(f"--episode {p} is out of range; this record has episodes 0..{n - 1}")
    ok = True
    for p in positions:
        record = read_episode(args.path, p)
        returns = ", ".join(f"{s} {float(r.sum()):+.2f}" for s, r in record.rewards.items())
        if not args.verify:
            print(f"episode {record.index}: {record.length} steps; returns {returns}")
            continue
        check = resimulate(manifest, record)
        if check.match:
            print(
                f"episode {record.index}: {record.length} steps; returns {returns}; "
                "verified: every observation and reward matches exactly (actions, attacks "
                "and the manifest re-derived)"
            )
            for note in check.notes:
                print(f"  note: {note}")
        else:
            ok = False
            print(
                f"episode {record.index}: MISMATCH at step {check.first_mismatch}: {check.detail}"
            )
    if not ok:
        print("arena: error: re-simulation diverged from the record", file=sys.stderr)
        return 1
    return 0


def _replay_video(args: argparse.Namespace) -> int:
    from arena.video import check_video_path, episode_video

    check_video_path(args.video)
    episode = 0 if args.episode is None else args.episode
    video = episode_video(
        args.path, args.video, episode=episode, fps=args.fps, verify=not args.no_verify
    )
    check = "verified: the re-simulation matches the record" if video.verified else "not verified"
    print(
        f"episode {video.episode}: {video.steps} steps -> {video.path} ({video.frames} frames "
        f"at {video.fps:g} fps, {video.layout} layout, {video.seconds:.1f} s); {check}"
    )
    for note in video.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from arena.report import write_report

    page = write_report(args.run_dir, out=args.out, records=args.record or ())
    print(f"report written to {page}")
    return 0


def cmd_scorecard(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from arena.cli.options import pairs
    from arena.rundir import run_name
    from arena.scorecard import run_scorecard

    if args.compare:
        return _compare(args)
    if not args.env_id or not args.victim:
        raise UsageError("give ENV_ID and --victim SEAT=SPEC, or --compare DIR DIR ...")
    victim = pairs([args.victim], "--victim")
    ((seat, spec),) = victim.items()
    opponents = pairs(args.opponent, "--opponent")
    if seat in opponents:
        raise UsageError(f"--opponent {seat}=...: that is the victim's seat")
    out = Path(args.out or Path("runs") / "scorecard" / run_name(args.env_id, args.seed))
    check_output_dir(out, "--out")
    _check_results_kind(out, "scorecard")
    if args.learned is not None:
        from agents.attacks import parse_attack
        from arena.errors import USER_ERRORS
        from arena.perturber import read_marker

        try:  # the director whole, as its cells will load it, before any game is played
            parse_attack(f"learned:{args.learned}")
            marker = read_marker(Path(args.learned))
        except USER_ERRORS as exc:
            raise UsageError(f"--learned: {exc}") from None
        if (marker["env"], marker["seat"]) != (args.env_id, seat):
            raise UsageError(
                f"--learned {args.learned} attacks {marker['env']} seat {marker['seat']!r}, "
                f"not {args.env_id} seat {seat!r}"
            )
    card = run_scorecard(
        args.env_id,
        seat,
        spec,
        opponents=opponents,
        budget=args.budget,
        episodes=args.episodes,
        seed=args.seed,
        out=out,
        ray=args.ray,
        families=(
            tuple(f.strip() for f in args.families.split(","))
            if args.families is not None
            else None
        ),
        learned=args.learned,
    )
    if args.json:
        print(json.dumps(card.to_json(), sort_keys=True))
        return 0
    print(f"{card.env} {card.victim_seat}={card.victim}: {card.metric}, ε {card.units}")
    print(f"  clean {card.clean.score:.3g} [{card.clean.ci95[0]:.3g}, {card.clean.ci95[1]:.3g}]")
    for v in card.worst:
        print(
            f"  ε={v.eps:<8} worst {v.score:8.3g} [{v.ci95[0]:.3g}, {v.ci95[1]:.3g}]  ({v.family})"
        )
    print(f"  normalised area under the worst case: {card.normalised_area:.3f}")
    for family, why in card.not_applicable.items():
        print(f"  {family}: not applicable: {why}")
    print(f"written to {out}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from arena.io import write_json_atomic
    from arena.scorecard import compare

    given = [
        flag
        for flag, value in (
            ("ENV_ID", args.env_id),
            ("--victim", args.victim),
            ("--opponent", args.opponent),
            ("--families", args.families),
            ("--learned", args.learned),
            ("--ray", args.ray),
        )
        if value is not None
    ]
    if given:
        raise UsageError(
            f"--compare takes only scorecard directories (and --out, --json), not {given[0]}"
        )
    if args.out:
        _check_results_kind(check_output_dir(args.out, "--out"), "leaderboard")
    cards, results = compare([Path(p) for p in args.compare])
    if args.out:
        out = Path(args.out).expanduser()
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / "results.json", results.to_json())
    if args.json:
        rows = [  # the cards' own JSON form: a clean score of 0 leaves the area null
            {key: c.to_json()[key] for key in ("victim", "normalised_area", "worst")} for c in cards
        ]
        print(json.dumps({"env": cards[0].env, "ranking": rows}, sort_keys=True))
        return 0
    for i, c in enumerate(cards, 1):
        worst = "  ".join(f"{v.eps}: {v.score:.3g}" for v in c.worst)
        area = "n/a (clean 0)" if math.isnan(c.normalised_area) else f"{c.normalised_area:.3f}"
        print(f"{i}. {c.victim}  area {area}  worst {worst}")
    return 0


def _check_results_kind(out: Path, kind: str) -> None:
    """Refuse an ``--out`` whose ``results.json`` belongs to another kind of run (a
    scorecard, a training run): writing there would replace it."""
    from arena.artifacts.base import ArtifactError, read_json

    path = out / "results.json"
    if not (path.exists() or path.is_symlink()):
        return
    try:
        found = read_json(path)
    except ArtifactError:
        found = None
    if not isinstance(found, dict) or found.get("kind") != kind:
        raise UsageError(
            f"--out {out} holds the results.json of another run; give a new directory "
            f"(or one of a {kind})"
        )
