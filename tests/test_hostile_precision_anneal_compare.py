"""Red-team tests of PGD's precision, FGSM's refusal, --anneal, null areas and the ends
of episodes, tried as an attacker or a careless user would:

1. PGD's ``precision`` parameter (``pgd:...,precision=auto|fp32``), the attack-spec
   parser around it (``agents.attacks.parse_attack``) and FGSM, which has no such
   parameter;
2. FGSM refused on a victim with continuous actions (``evaluate``, masked victims, the
   scorecard's "not applicable", records made before the refusal);
3. ``arena train-adversary --anneal F``: odd numbers, and ``--resume`` (the recipe flag
   refused, the run directory untouched, the recipe kept);
4. ``scorecard.json`` read by ``arena scorecard --compare``: the area written ``null``
   where the clean score is 0, forged or odd areas and ε grids;
5. the ``ends`` field of ``arena evaluate --json``.

The promise for bad input: one line ``arena: error: ...`` on stderr naming the valid
choices, exit status 2, no traceback, nothing lost or half-written.

Tests whose docstring begins "Defect" failed on the code as the red team found it (each
is mended); the others pinned what was already right.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from pathlib import Path
from typing import Any

import pytest
from conftest import ASSETS, assert_one_line_error, edit_manifest, put_scorecard, scorecard_json

from agents.attacks import AttackSpecError, parse_attack

RUNNER = f"sb3:{ASSETS / 'toy_pass_v0__runner.zip'}"
CATCH = f"sb3:{ASSETS / 'toy_catch_v0__player.zip'}"
VALID_PRECISIONS = "valid: auto, fp32"


def _catch_pgd(cli, precision: str, *extra: str):
    return cli("evaluate", "toy_catch_v0", "--policy", f"player={CATCH}",
               "--attack", f"player=pgd:eps=1/255,precision={precision}",
               "--episodes", "1", "--no-save", "--json", *extra)  # fmt: skip


def _tree(root: Path) -> dict[str, str]:
    """Every path under ``root`` (directories too) with its content's sha256."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        out[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def assert_untouched(root: Path, before: dict[str, str]) -> None:
    after = _tree(root)
    assert after == before, {
        k: (before.get(k), after.get(k))
        for k in set(before) | set(after)
        if before.get(k) != after.get(k)
    }


# ============================================================ 1. pgd precision=


@pytest.mark.parametrize(
    "precision",
    ["", "fp16", "bf16", "FP16", "auto=1", "ｆｐ32", "fp32\nauto", "fp32 fp16", "true", "None",
     "1", "\udcff", "İ", "x" * 500],
)  # fmt: skip
def test_unknown_precision_is_one_line_naming_auto_and_fp32(cli, tmp_path, precision):
    result = _catch_pgd(cli, precision)
    assert_one_line_error(result, "pgd: unknown precision", VALID_PRECISIONS)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("spelling", ["FP32", " Fp32 ", "AUTO", "auto", "fp32,"])
def test_precision_spellings_that_mean_auto_or_fp32(spelling):
    attack = parse_attack(f"pgd: eps=1/255 , precision={spelling}")
    assert attack.precision == spelling.strip(" ,").lower()


def test_precision_fp32_in_capitals_runs_a_game(cli):
    result = _catch_pgd(cli, "FP32")
    assert result.code == 0, result.err
    seat = json.loads(result.out.strip().splitlines()[-1])["seats"]["player"]
    assert seat["attacked_fraction"] == 1.0


@pytest.mark.parametrize(
    "spec", ["fgsm:precision=fp32", "fgsm:eps=1/255,precision=auto", "fgsm:precision="]
)
def test_fgsm_has_no_precision_and_names_its_parameters(cli, spec):
    result = cli("evaluate", "toy_catch_v0", "--policy", f"player={CATCH}",
                 "--attack", f"player={spec}", "--episodes", "1", "--no-save")  # fmt: skip
    assert_one_line_error(
        result, "fgsm: unknown parameter 'precision'", "valid parameters: eps, norm, target, round"
    )


@pytest.mark.parametrize(
    ("spec", "key"),
    [
        ("pgd:eps=1/255,precision=fp16,precision=fp32", "precision"),
        ("pgd:eps=1/255,precision=fp32,precision=auto", "precision"),
        ("pgd:eps=1/255,eps=1", "eps"),
        ("fgsm:eps=1/255,eps=1", "eps"),
    ],
)
def test_a_parameter_given_twice_is_refused(spec, key):
    """Defect: a key given twice in an attack spec is silently last-wins
    (``pgd:precision=fp16,precision=fp32`` runs with fp32; ``fgsm:eps=1/255,eps=1`` runs
    at ε=1), where ``--policy``/``--attack`` pairs and grid options refuse a key given
    twice. Expected: an AttackSpecError naming the key."""
    with pytest.raises(AttackSpecError, match=key):
        parse_attack(spec)


def test_a_precision_given_twice_is_one_line_on_the_command_line(cli, tmp_path):
    """Defect: as above, from ``arena evaluate``: the game is played (exit 0)."""
    result = _catch_pgd(cli, "fp16,precision=fp32")
    assert_one_line_error(result, "precision")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("spec", [None, 1, 2.5, ["pgd"], b"pgd:eps=1/255"])
def test_parse_attack_refuses_what_is_not_text_with_its_own_error(spec):
    """Defect: ``parse_attack(None)`` raises AttributeError ('NoneType' object has no
    attribute 'partition'), bytes a TypeError about str; ``agents.specs.parse`` refuses
    the same inputs with its PolicySpecError. Expected: AttackSpecError."""
    with pytest.raises(AttackSpecError):
        parse_attack(spec)  # type: ignore[arg-type]


def test_a_very_long_precision_is_not_echoed_whole(cli):
    """Defect: the refusal of a 100,000-character precision is a 100,050-character line
    (``check_choice`` echoes the value whole; ``parse_number`` cuts what it echoes to
    60 characters). Expected: a short line that still names the valid precisions."""
    result = _catch_pgd(cli, "x" * 100_000)
    assert_one_line_error(result, VALID_PRECISIONS)
    assert len(result.err) < 1000, len(result.err)


# ============================================================ 2. fgsm on continuous actions


@pytest.mark.parametrize(
    "attack", ["fgsm", "fgsm:target=0", "fgsm:target=worst", "fgsm:norm=l2", "fgsm:eps=0",
               "fgsm:eps=0.5,norm=l2,round=true"],
)  # fmt: skip
@pytest.mark.parametrize("victim", [RUNNER, f"masked:{RUNNER}"])
def test_fgsm_on_a_continuous_victim_is_one_line_and_writes_nothing(cli, tmp_path, attack, victim):
    result = cli("evaluate", "toy_pass_v0", "--policy", f"runner={victim}",
                 "--policy", "blocker=zero", "--attack", f"runner={attack}", "--episodes", "1",
                 "--runs", tmp_path / "runs", "--record", tmp_path / "rec")  # fmt: skip
    assert_one_line_error(result, "fgsm moves nothing on a victim with continuous actions",
                          "pgd", "mad", "noise")  # fmt: skip
    assert not (tmp_path / "runs").exists() and not (tmp_path / "rec").exists()


def test_fgsm_refusal_from_worker_processes_is_one_line(cli, tmp_path):
    result = cli("evaluate", "toy_pass_v0", "--policy", f"runner={RUNNER}",
                 "--policy", "blocker=zero", "--attack", "runner=fgsm", "--episodes", "3",
                 "--workers", "2", "--runs", tmp_path / "runs")  # fmt: skip
    assert_one_line_error(result, "fgsm moves nothing")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("env", "seat", "victim", "applies"),
    [
        ("toy_pass_v0", "runner", RUNNER, False),
        ("toy_pass_v0", "runner", f"masked:{RUNNER}", False),
        ("toy_catch_v0", "player", CATCH, True),
    ],
)
def test_scorecard_plans_fgsm_only_for_discrete_victims(env, seat, victim, applies):
    """(``arena scorecard toy_pass_v0 --victim runner=... --budget quick --episodes 1``
    was run once by hand: exit 0, fgsm under ``not_applicable``, every other family
    scored.)"""
    from arena.scorecard import plan

    _, chosen, why_not, _ = plan(env, seat, victim, "quick")
    assert ("fgsm" in [f.name for f in chosen]) is applies
    assert ("fgsm" in why_not) is not applies
    if not applies:
        assert "continuous" in why_not["fgsm"]


def test_a_scorecard_of_only_families_that_do_not_apply_is_refused(cli, tmp_path):
    """Defect: ``arena scorecard toy_pass_v0 --victim runner=<continuous> --families
    fgsm`` plays 7 games (~20 s) and writes a scorecard without a single attack row:
    the worst case is empty, the area printed ``nan`` (JSON null), and ``--compare``
    later labels it "n/a (clean 0)" though its clean score is 1. Expected: one line
    before any game, naming fgsm and why it does not apply, nothing written."""
    out = tmp_path / "card"
    result = cli("scorecard", "toy_pass_v0", "--victim", f"runner={RUNNER}", "--budget", "quick",
                 "--episodes", "1", "--families", "fgsm", "--out", out)  # fmt: skip
    assert_one_line_error(result, "fgsm")
    assert not out.exists()


def test_replaying_a_record_of_fgsm_on_a_continuous_victim_is_not_called_forged(cli, tmp_path):
    """Defect: a record made before the refusal (fgsm on the toy runner: the attack moved
    nothing, every δ 0) is now reported by ``replay --verify`` as a MISMATCH, "the
    manifest's policy of 'runner' cannot have played this record", i.e. as tampered,
    with exit 1. (Stand-in for such a record: ``noise:eps=0`` writes exactly what that
    fgsm wrote, δ = 0 at every step; its manifest then names ``fgsm:eps=0.05``.)
    Expected: not verified (a forger could otherwise name fgsm to skip the re-derivation
    of actions), with the reason: the record's attack is refused by this arena."""
    rec = tmp_path / "rec"
    made = cli("evaluate", "toy_pass_v0", "--policy", f"runner={RUNNER}", "--policy",
               "blocker=zero", "--attack", "runner=noise:eps=0", "--episodes", "1",
               "--no-save", "--record", rec)  # fmt: skip
    assert made.code == 0, made.err
    assert cli("replay", rec, "--verify").code == 0

    def claim_fgsm(doc: dict[str, Any]) -> None:
        doc["attacks"]["runner"] = "fgsm:eps=0.05"

    edit_manifest(rec, claim_fgsm)
    result = cli("replay", rec, "--verify")
    said = result.out + result.err
    assert "cannot have played this record" not in said, said  # not blamed on the policy
    # not verified (naming a refused attack must not let a forger skip the check), and why
    assert result.code == 1 and "refused by this arena" in said, said
    assert "fgsm moves nothing on a victim with continuous actions" in said, said


# ============================================================ 3. train-adversary --anneal


def _train(cli, out: Path, *extra: str, timesteps: int = 2048):
    return cli("train-adversary", "toy_pass_v0", "--victim", f"runner={RUNNER}",
               "--timesteps", timesteps, "--out", out, *extra)  # fmt: skip


def _shaping_weights(out: Path) -> list[float]:
    rows = (out / "progress.csv").read_text().splitlines()
    column = rows[0].split(",").index("shaping")
    return [float(r.split(",")[column]) for r in rows[1:]]


@pytest.mark.parametrize(
    "value",
    ["1.0000001", "nan", "NaN", "inf", "-inf", "0x1", "", " ", "1_0", "1/0", "1e400", "-0.1",
     "0.5.0", "½", "true"],
)  # fmt: skip
def test_anneal_out_of_range_or_not_a_number_is_one_line(cli, tmp_path, value):
    out = tmp_path / "run"
    result = _train(cli, out, f"--anneal={value}", "--shaping", "5")
    assert_one_line_error(result, "--anneal", "0 <= anneal <= 1")
    assert not out.exists()


def test_anneal_refusal_shows_the_value_given(cli, tmp_path):
    """Defect: ``--anneal 1.0000001`` is refused as "anneal=1 is out of range; valid:
    0 <= anneal <= 1": the line names an in-range value as out of range (``_show``
    formats with ``:g``). Expected: the value as given."""
    result = _train(cli, tmp_path / "run", "--anneal=1.0000001")
    assert_one_line_error(result, "--anneal")
    assert "1.0000001" in result.err, result.err


@pytest.mark.parametrize("value", ["4e-4", "1e-400"])
def test_a_tiny_positive_anneal_does_not_mean_never(cli, tmp_path, value):
    """Defect: ``--anneal 4e-4 --timesteps 2048`` anneals over int(0.82) = 0 steps, and a
    schedule of 0 steps means "never annealed": the dense terms keep their full weight
    throughout, the opposite of what a small fraction asks (``1e-3`` is gone by step 2).
    ``1e-400`` reads as 0.0: the same. Expected: the weight is 0 by the end (annealed
    within the first steps), or the value refused in one line."""
    out = tmp_path / "run"
    result = _train(cli, out, f"--anneal={value}", "--shaping", "5")
    if result.code != 0:
        assert_one_line_error(result, "--anneal")
        assert not out.exists()
        return
    assert _shaping_weights(out)[-1] == 0.0, _shaping_weights(out)


@pytest.mark.parametrize(("value", "last"), [("-0", 5.0), ("0", 5.0), ("1e-3", 0.0), ("1", 0.0)])
def test_anneal_edges(cli, tmp_path, value, last):
    out = tmp_path / "run"
    result = _train(cli, out, f"--anneal={value}", "--shaping", "5")
    assert result.code == 0, result.err
    config = json.loads((out / "adversary_run.json").read_text())["config"]
    assert config["anneal_fraction"] == float(value)
    assert _shaping_weights(out)[-1] == last


@pytest.fixture
def base_run(cli, tmp_path) -> Path:
    out = tmp_path / "base"
    done = _train(cli, out, "--anneal", "0.25", "--shaping", "5")
    assert done.code == 0, done.err
    return out


def test_resume_refuses_anneal_and_changes_nothing(cli, base_run):
    before = _tree(base_run)
    for value in ("0.25", "0.5", "-0", "0", "1/4"):
        result = _train(cli, base_run, "--resume", f"--anneal={value}", timesteps=4096)
        assert_one_line_error(result, "--resume continues the run with its own recipe",
                              "drop --anneal")  # fmt: skip
    for value in ("nan", "", "2", "1e-400"):
        assert_one_line_error(_train(cli, base_run, "--resume", f"--anneal={value}"), "--anneal")
    assert_untouched(base_run, before)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [(True, "must be a number"), (None, "must be a number"), (math.nan, "not a finite number"),
     (-0.1, "must be in [0, 1]"), (1.5, "must be in [0, 1]"), ([0.5], "must be a number"),
     ("nan", "not a finite number"), (1e308 * 10, "not a finite number")],
)  # fmt: skip
def test_resume_of_a_run_file_with_a_hostile_anneal_is_one_line(cli, base_run, value, fragment):
    path = base_run / "adversary_run.json"
    doc = json.loads(path.read_text())
    doc["config"]["anneal_fraction"] = value
    path.write_text(json.dumps(doc))
    before = _tree(base_run)
    result = _train(cli, base_run, "--resume", timesteps=4096)
    assert_one_line_error(result, "anneal_fraction", fragment)
    assert_untouched(base_run, before)


def test_resume_keeps_the_anneal_schedule(cli, tmp_path):
    """Defect: the schedule is ``anneal_fraction × --timesteps of this session``: a run
    trained with ``--anneal 1 --shaping 5 --timesteps 2048`` ends with the shaping
    weight at 0; resumed with ``--timesteps 6144`` the weight is back at 1.67 at step
    4096 (the ramp re-stretched over 6144 steps). ``--anneal`` is "part of the recipe
    (kept by --resume)", yet resuming changes what the run's reward was. Expected: the
    weight never rises again once it has fallen."""
    out = tmp_path / "run"
    assert _train(cli, out, "--anneal", "1", "--shaping", "5").code == 0
    assert _shaping_weights(out) == [0.0]
    resumed = _train(cli, out, "--resume", timesteps=6144)
    assert resumed.code == 0, resumed.err
    weights = _shaping_weights(out)
    assert len(weights) == 3
    assert all(b <= a for a, b in itertools.pairwise(weights)), weights


# ============================================================ 4. scorecard.json --compare

EPS = ("0.05", "0.1")
_card, _put = scorecard_json, put_scorecard


def _strict(text: str) -> Any:
    def refuse(token: str) -> Any:
        raise AssertionError(f"not standard JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def _compare(cli, *args: Any):
    """``arena scorecard --compare ...``; an exception out of ``main`` is a traceback."""
    try:
        return cli("scorecard", "--compare", *args)
    except Exception as exc:
        pytest.fail(f"traceback instead of one line: {type(exc).__name__}: {exc}")


def _without_area() -> dict[str, Any]:
    card = _card("forged")
    del card["normalised_area"]
    return card


_FORGED = {
    "null_area_clean_1": (_card("forged", normalised_area=None), "only a clean score of 0"),
    "missing_area_clean_1": (_without_area(), "only a clean score of 0"),
    "nan_text": (_card("forged", normalised_area="NaN"), "must be a finite number or null"),
    "null_text": (_card("forged", normalised_area="null"), "must be a finite number or null"),
    "true": (_card("forged", normalised_area=True), "must be a finite number or null"),
    "false": (_card("forged", worst=(-1.0, 1.0), normalised_area=False), "finite number or null"),
    "minus_zero_wrong": (_card("forged", normalised_area=-0.0), "not the area under"),
    "an_object": (_card("forged", normalised_area={}), "must be a finite number or null"),
    "a_list": (_card("forged", normalised_area=[0.625]), "must be a finite number or null"),
    "overflowing_scores_null": (
        _card("forged", worst=(1e308, 1e308), normalised_area=None), "only a clean score of 0",
    ),
}  # fmt: skip
_RAW = {
    "nan_token_clean_1": ("NaN", "only a clean score of 0"),
    "1e309": ("1e309", "must be a finite number or null"),
    "-1e309": ("-1e309", "must be a finite number or null"),
    "Infinity": ("Infinity", "must be a finite number or null"),
}


def _raw_card(token: str) -> str:
    card = _card("forged")
    card["normalised_area"] = 12345.0
    return json.dumps(card).replace("12345.0", token)


@pytest.mark.parametrize("case", sorted(_FORGED) + sorted(_RAW))
def test_forged_areas_are_one_line_and_write_nothing(cli, tmp_path, case):
    good = _put(tmp_path, "good", _card("good"))
    if case in _RAW:
        token, fragment = _RAW[case]
        bad = _put(tmp_path, "bad", raw=_raw_card(token))
    else:
        card, fragment = _FORGED[case]
        bad = _put(tmp_path, "bad", card)
    for order in ((good, bad), (bad, good)):
        result = _compare(cli, *order, "--json", "--out", tmp_path / "board")
        assert_one_line_error(result, fragment)
        assert result.out == ""
    assert not (tmp_path / "board").exists()


@pytest.mark.parametrize(
    ("card", "area"),
    [
        (_card("zero", clean_score=0.0, worst=(0.0, 0.0)), None),
        (_card("zero", clean_score=-0.0, worst=(0.0, 0.0)), None),
        (_card("zero", clean_score=0.0, worst=(0.0, 0.0), normalised_area=math.nan), None),
        (_card("flat", worst=(-1.0, 1.0), normalised_area=-0.0), -0.0),
        (_card("whole", worst=(1.0, 1.0), normalised_area=1), 1.0),
    ],
)
def test_compare_json_is_strict_for_every_area_it_accepts(cli, tmp_path, card, area):
    good = _put(tmp_path, "good", _card("good"))
    other = _put(tmp_path, "other", card)
    board = tmp_path / "board"
    result = _compare(cli, other, good, "--json", "--out", board)
    assert result.code == 0, result.err
    ranking = _strict(result.out.strip().splitlines()[-1])["ranking"]
    (entry,) = [r for r in ranking if r["victim"] == card["victim"]]
    assert entry["normalised_area"] == area
    if area is None:  # a clean score of 0: ranked last
        assert ranking[-1] is entry
    for path in board.rglob("*.json"):
        _strict(path.read_text())
    text = _compare(cli, other, good)
    assert text.code == 0 and "nan" not in text.out.lower(), text.out


@pytest.mark.parametrize("eps", [("abc", "def"), ("nan", "nan"), ("1e400", "1e400"), ("", "0.1")])
def test_a_worst_case_at_an_eps_that_is_no_number_is_one_line(cli, tmp_path, eps):
    """Defect: ``--compare`` recomputes the area with ``parse_number(v.eps)``, whose
    ValueError is no user error: two cards whose ``worst`` ε are ``"abc"`` (or
    ``"nan"``, ``"1e400"``) end in a traceback. Expected: one line naming the file."""
    first = _card("a")
    for key in ("rows", "worst"):
        for entry, e in zip(first[key], eps, strict=True):
            entry["eps"] = e
    second = dict(first, victim="b")
    a, b = _put(tmp_path, "a", first), _put(tmp_path, "b", second)
    result = _compare(cli, a, b, "--json", "--out", tmp_path / "board")
    assert_one_line_error(result, "scorecard.json")
    assert not (tmp_path / "board").exists()


@pytest.mark.parametrize(
    "card",
    [
        _card("forged", clean_score=5e-324, normalised_area=None),  # scale underflows to 0
        _card("forged", eps=("0", "0"), normalised_area=None),  # an ε grid of zeros
        _card("forged", eps=(), worst=(), normalised_area=None),  # no worst case at all
    ],
    ids=["subnormal_clean", "eps_grid_of_zeros", "no_worst_case"],
)
def test_a_null_area_is_not_passed_off_as_a_clean_score_of_0(cli, tmp_path, card):
    """Defect: ``null`` (NaN) is accepted wherever the recomputed area is NaN, and the
    recomputation is NaN not only for a clean score of 0: a clean score of 5e-324 (the
    scale underflows), an ε grid of zeros, an empty worst case. ``--compare`` then
    ranks the card last and prints "area n/a (clean 0)" for a victim whose clean score
    is not 0. Expected: refused (one line), or at least not described as clean 0."""
    first = _put(tmp_path, "first", card)
    second = _put(tmp_path, "second", dict(card, victim="other"))
    result = _compare(cli, first, second)
    if result.code != 0:
        assert_one_line_error(result)
        return
    assert "clean 0" not in result.out, result.out


# ============================================================ 5. evaluate --json: ends


def _evaluate_zero(cli, env: str, episodes: int, *extra: str):
    import envs

    policies = [x for s in envs.spec(env).seats for x in ("--policy", f"{s}=zero")]
    return cli("evaluate", env, *policies, "--episodes", episodes, "--no-save", *extra)


def assert_ends_count_the_episodes(payload: dict[str, Any], episodes: int) -> None:
    ends = payload["ends"]
    assert isinstance(ends, dict) and ends, ends
    assert all(isinstance(k, str) and k for k in ends), ends
    assert all(isinstance(v, int) and v > 0 for v in ends.values()), ends
    assert sum(ends.values()) == episodes == payload["episodes"], ends
    assert list(ends.values()) == sorted(ends.values(), reverse=True), ends


@pytest.mark.mujoco
@pytest.mark.parametrize(
    "env",
    ["you_shall_not_pass_v0", "kick_and_defend_v0", "sumo_humans_v0", "sumo_ants_v0",
     "run_to_goal_humans_v0", "run_to_goal_ants_v0"],
)  # fmt: skip
def test_ends_is_present_for_mujoco_games_and_counts_every_episode(cli, env):
    result = _evaluate_zero(cli, env, 2, "--json")
    assert result.code == 0, result.err
    assert_ends_count_the_episodes(_strict(result.out.strip().splitlines()[-1]), 2)


@pytest.mark.mujoco
def test_ends_with_workers_and_in_the_table(cli):
    result = _evaluate_zero(cli, "you_shall_not_pass_v0", 3, "--workers", "2", "--json")
    assert result.code == 0, result.err
    payload = _strict(result.out.strip().splitlines()[-1])
    assert_ends_count_the_episodes(payload, 3)
    table = _evaluate_zero(cli, "you_shall_not_pass_v0", 3)
    line = "ended: " + ", ".join(f"{k} {v}" for k, v in payload["ends"].items())
    assert line in table.out.splitlines(), table.out


@pytest.mark.parametrize("env", ["toy_pass_v0", "toy_catch_v0"])
def test_ends_is_absent_for_toy_games(cli, env):
    result = _evaluate_zero(cli, env, 2, "--json")
    assert result.code == 0, result.err
    payload = _strict(result.out.strip().splitlines()[-1])
    assert "ends" not in payload and payload["episodes"] == 2
    assert "ended:" not in _evaluate_zero(cli, env, 2).out
