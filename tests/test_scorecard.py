"""`arena scorecard`: the verdict is the worst family at each ε, with the right units,
every family that does not apply said why (WIP of issue 12)."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
from conftest import ASSETS, assert_one_line_error

from arena.artifacts.scorecard import FamilyRow, Scorecard, Verdict
from arena.scorecard import area, plan, verdict

CATCH = f"sb3:{ASSETS / 'toy_catch_v0__player.zip'}"
RUNNER = f"sb3:{ASSETS / 'toy_pass_v0__runner.zip'}"


def row(family: str, eps: str, score: float) -> FamilyRow:
    return FamilyRow(family, eps, score, (score - 1, score + 1))


def test_the_verdict_is_the_worst_family_at_each_eps():
    rows = [
        row("fgsm", "0.1", 5),
        row("pgd", "0.1", 3),
        row("fgsm", "0.2", 1),
        row("pgd", "0.2", 2),
    ]
    verdicts, normalised = verdict(("0.1", "0.2"), row("clean", "0", 10), rows, "mean return")
    assert [(v.eps, v.family, v.score) for v in verdicts] == [("0.1", "pgd", 3), ("0.2", "fgsm", 1)]
    # trapezoids: 0.1 * (10 + 3) / 2 + 0.1 * (3 + 1) / 2 = 0.85, over 10 * 0.2
    assert math.isclose(normalised, 0.85 / 2.0)


def test_area_is_one_when_nothing_hurts():
    assert area([0.1, 0.2, 0.5], 7.0, [7.0, 7.0, 7.0]) == pytest.approx(1.0)


def test_units_and_what_does_not_apply():
    kind, families, why_not, eps = plan("toy_catch_v0", "player", CATCH, "quick")
    assert kind == "pixels" and eps[2] == "1/255"
    assert {"fgsm", "pgd", "timed", "universal", "mad"} <= {f.name for f in families}
    assert "patch" in why_not
    kind, families, why_not, eps = plan("toy_pass_v0", "runner", RUNNER, "quick")
    assert kind == "state"
    names = {f.name for f in families}
    assert {"timed", "universal"} & names == set()
    assert "continuous" in why_not["timed"] and "images" in why_not["universal"]
    assert "zero at the clean input" in why_not["fgsm"]  # a Gaussian's mode: no gradient


def test_bad_input(cli, tmp_path):
    assert_one_line_error(
        cli("scorecard", "toy_catch_v0", "--victim", f"player={CATCH}", "--families", "warp"),
        "unknown attack family 'warp'; valid: noise, fgsm",
    )
    assert_one_line_error(cli("scorecard", "toy_catch_v0", "--victim", "nobody=random"), "nobody")
    assert not (tmp_path / "runs").exists()


def test_a_two_player_victim_without_an_opponent_meets_the_zoo_or_one_line(
    cli, tmp_path, monkeypatch
):
    """No --opponent and no default in the game: the zoo agent of the other seat; without
    the zoo, one line saying how to give one, before any game is played."""
    monkeypatch.delenv("ARENA_ZOO_DIR", raising=False)
    monkeypatch.setenv("ARENA_HOME", str(tmp_path / "home"))
    out = tmp_path / "card"
    args = ["scorecard", "you_shall_not_pass_v0", "--victim", "runner=random", "--out", out]
    assert_one_line_error(cli(*args), "ARENA_ZOO_DIR")
    assert not out.exists()
    assert_one_line_error(cli(*args, "--opponent", "blocker=run:nowhere"), "nowhere")
    assert not out.exists()


@pytest.mark.slow
def test_a_scorecard_of_the_toy_catcher(cli, tmp_path):
    out = tmp_path / "card"
    done = cli(
        "scorecard", "toy_catch_v0", "--victim", f"player={CATCH}", "--families", "fgsm,pgd",
        "--episodes", "2", "--out", out, "--json",
    )  # fmt: skip
    assert done.code == 0, done.err
    card = Scorecard.from_json(json.loads(done.out.strip().splitlines()[-1]), "stdout")
    assert card.metric == "mean return" and "pixel" in card.units
    assert len(card.rows) == 2 * 4 and {r.family for r in card.rows} == {"fgsm", "pgd"}
    for v in card.worst:
        assert v.score == min(r.score for r in card.rows if r.eps == v.eps)
    on_disk = Scorecard.from_json(json.loads((out / "scorecard.json").read_text()), "file")
    assert on_disk == card
    assert cli("report", out).code == 0
    assert "The worst case over attack families" in (out / "report" / "index.html").read_text()


def _card(victim: str, worst: list[float], env: str = "toy_catch_v0") -> Scorecard:
    eps = ["0.001", "1/255"]
    return Scorecard(
        env=env, victim_seat="player", victim=victim, metric="mean return",
        units="L∞ on the [0, 1] pixel input", budget="quick", episodes=2, seed=0,
        clean=row("clean", "0", 10),
        rows=tuple(row("pgd", e, w) for e, w in zip(eps, worst, strict=True)),
        worst=tuple(
            Verdict(e, "pgd", w, (w - 1, w + 1)) for e, w in zip(eps, worst, strict=True)
        ),
        normalised_area=area([0.001, 1 / 255], 10, worst),
    )  # fmt: skip


def test_compare_ranks_by_area_then_worst_case(cli, tmp_path):
    from arena.io import write_json_atomic

    for name, card in {
        "weak": _card("weak", [3, -5]),
        "strong": _card("strong", [9, 8]),
        "middle": _card("middle", [7, 1]),
    }.items():
        (tmp_path / name).mkdir()
        write_json_atomic(tmp_path / name / "scorecard.json", card.to_json())
    done = cli("scorecard", "--compare", *(tmp_path / n for n in ("weak", "strong", "middle")),
               "--json", "--out", tmp_path / "board")  # fmt: skip
    assert done.code == 0, done.err
    ranking = json.loads(done.out.strip().splitlines()[-1])["ranking"]
    assert [r["victim"] for r in ranking] == ["strong", "middle", "weak"]
    board = json.loads((tmp_path / "board" / "results.json").read_text())
    assert board["kind"] == "leaderboard" and board["headline"]["rows"][0][1] == "strong"
    (tmp_path / "other").mkdir()
    write_json_atomic(
        tmp_path / "other" / "scorecard.json", _card("x", [1, 1], env="toy_pass_v0").to_json()
    )
    assert_one_line_error(
        cli("scorecard", "--compare", tmp_path / "weak", tmp_path / "other"), "not comparable"
    )
    (tmp_path / "empty").mkdir()
    assert_one_line_error(
        cli("scorecard", "--compare", tmp_path / "weak", tmp_path / "empty"), "scorecard.json"
    )
    forged = _card("forged", [3, -5])  # a weak victim that claims the best area
    (tmp_path / "forged").mkdir()
    write_json_atomic(
        tmp_path / "forged" / "scorecard.json",
        dataclasses.replace(forged, normalised_area=0.99).to_json(),
    )
    assert_one_line_error(
        cli("scorecard", "--compare", tmp_path / "weak", tmp_path / "forged"), "not the area"
    )
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "scorecard.json").write_text('{"kind": "scorecard", "schema_version": 9}')
    assert_one_line_error(
        cli("scorecard", "--compare", tmp_path / "weak", tmp_path / "bad"), "schema_version"
    )


@pytest.mark.slow
def test_a_masked_victim_meets_each_opponent_once(cli, tmp_path):
    """The masked victim's scorecard: observation families through the mask (it is
    differentiable), and each opponent once, not masked twice."""
    out = tmp_path / "card"
    done = cli("scorecard", "toy_pass_v0", "--victim", f"runner=masked:{RUNNER}", "--families",
               "pgd", "--episodes", "1", "--out", out, "--json")  # fmt: skip
    assert done.code == 0, done.err
    card = Scorecard.from_json(json.loads(done.out.strip().splitlines()[-1]), "stdout")
    assert {r.family for r in card.rows} == {"pgd"} and len(card.worst) == 4
    assert card.opponents and not any(o.masked for o in card.opponents)
