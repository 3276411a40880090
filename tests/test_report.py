"""``arena report`` and the run files it reads (``arena.artifacts.run``): one
self-contained page per run, the finding first; checked in headless Chromium (slow)."""

from __future__ import annotations

import base64
import contextlib
import csv
import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import assert_one_line_error

from arena.artifacts import RunFileError, RunResults, Score
from arena.errors import ArenaError
from arena.report import MARKER, write_report
from arena.report.reading import read_run

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "arena" / "assets"
RUNNER = ASSETS / "toy_pass_v0__runner.zip"
GOLDEN = Path(__file__).parent / "data" / "golden_toy_pass"
SCREENSHOTS = ROOT / "runs" / "screenshots"
"""Where the slow tier leaves its screenshots of the reports (git-ignored)."""
SCORE_CELL = r"-?[0-9.]+ \[-?[0-9.]+, -?[0-9.]+\]"


def _run_dir(root: Path) -> Path:
    (found,) = [p for p in root.rglob("config.json") if "report" not in p.parts]
    return found.parent


def _evaluate(cli, tmp_path: Path, *extra: str) -> Path:
    """An attacked toy_pass evaluate run (4 short episodes); returns its run directory."""
    result = cli(
        "evaluate",
        "toy_pass_v0",
        "--policy",
        f"runner=sb3:{RUNNER}",
        "--policy",
        "blocker=random",
        "--attack",
        "runner=noise:eps=0.1",
        "--episodes",
        "4",
        "--runs",
        tmp_path / "runs",
        *extra,
    )
    assert result.code == 0, result.err
    return _run_dir(tmp_path / "runs")


def _offline(page: str) -> None:
    """Nothing on the page is fetched: every image and video is a data: URI."""
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page and "url(" not in page
    for src in re.findall(r'<(?:img|source|video)[^>]*\ssrc="([^"]*)"', page):
        assert src.startswith("data:"), src[:80]


def _embedded_videos(page: str) -> list[bytes]:
    return [
        base64.b64decode(b64)
        for b64 in re.findall(r'<source src="data:video/mp4;base64,([^"]+)"', page)
    ]


def _headline(page: str, section: int = 0) -> str:
    """The headline table of the ``section``-th run on the page."""
    body = page.split('<section class="run"')[section + 1]
    table = body[body.index('<table class="results headline">') :]
    return table[: table.index("</table>")]


def _sections(page: str) -> list[str]:
    return re.findall(r'<section class="run[^"]*"[^>]*>\s*<h2>([^<]*)</h2>', page)


# ---------------------------------------------------------------- the run files


def _match(episodes: int = 2):
    from arena.match import run_match

    result, _ = run_match(
        "toy_pass_v0",
        {"runner": f"sb3:{RUNNER}", "blocker": "random"},
        n_episodes=episodes,
        seed=3,
        attacks={"runner": "noise:eps=0.1"},
    )
    return result


def test_run_results_of_a_match_round_trip():
    result = _match()
    policies = {"runner": f"sb3:{RUNNER}", "blocker": "random"}
    typed = RunResults.from_match(
        result, policies=policies, attacks={"runner": "noise:eps=0.1"}, record="rec"
    )
    data = json.loads(json.dumps(typed.to_json()))
    assert data["schema_version"] == 1 and data["seats"] == result.to_json()["seats"]
    assert RunResults.from_json(data, "results.json") == typed
    headline = typed.headline
    assert headline is not None and headline.highlight == (0,)  # the attacked seat
    assert headline.columns[:3] == ("seat", "win rate [95% CI]", "mean return [95% CI]")
    win = headline.rows[0][1]
    assert isinstance(win, Score) and win.ci95 == result.seats["runner"].win_rate_ci95
    (sample,) = typed.samples
    assert sample.policies == policies and sample.attacks == {"runner": "noise:eps=0.1"}
    assert sample.seed == 3 and sample.deterministic is True
    assert typed.records == (str(Path("rec").resolve()),)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda d: d.update(schema_version=2), "newer than this arena supports"),
        (lambda d: d.update(schema_version="1"), "not supported"),
        (lambda d: d.update(title=3), "title must be non-empty text, got int 3"),
        (
            lambda d: d["headline"]["rows"][0][1].update(value=0.01, ci95=[0.5, 1.0]),
            "headline.rows[0][1]: value 0.01 lies outside its interval",
        ),
        (
            lambda d: d["headline"]["rows"][0].pop(),
            "headline.rows[0] must be a list of 8 cells",
        ),
        (lambda d: d["headline"].update(highlight=[7]), "a row index in 0..1"),
        (lambda d: d["figures"][0].update(kind="pie"), "kind must be one of lines, bars"),
        (lambda d: d["samples"][0].update(seed=-1), "seed=-1 is out of range"),
        (
            lambda d: d["samples"][0].update(deterministic="yes"),
            "deterministic must be true, false or an object seat -> flag",
        ),
        (lambda d: d["samples"][0]["attacks"].update(nobody="noise:eps=1"), "has no policy"),
        (lambda d: d.update(records=["../elsewhere"]), "leaves the run directory"),
    ],
)
def test_run_results_refuse_a_wrong_field_in_one_line(change, fragment):
    data = RunResults.from_match(_match(1), policies={"runner": "random"}).to_json()
    data["samples"][0]["policies"]["blocker"] = "random"
    change(data)
    with pytest.raises(RunFileError) as err:
        RunResults.from_json(json.loads(json.dumps(data)), "results.json")
    assert isinstance(err.value, ArenaError)
    assert fragment in str(err.value) and "\n" not in str(err.value)
    assert str(err.value).startswith("results.json: ")


def _write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _score(wins: int, n: int = 20) -> dict[str, Any]:
    """A seat's score as ``SeatResult.to_json`` writes it."""
    rate = wins / n
    return {
        "wins": wins,
        "losses": n - wins,
        "ties": 0,
        "win_rate": rate,
        "win_rate_ci95": [max(0.0, rate - 0.2), min(1.0, rate + 0.2)],
        "mean_return": 2 * rate - 1,
        "std_return": 0.5,
        "return_ci95": [2 * rate - 1.3, 2 * rate - 0.7],
    }


def _matchup() -> dict[str, Any]:
    """One matchup as ``zoo_fidelity`` wrote it before ``results.json`` was typed."""
    return {
        "env": "toy_pass_v0",
        "matchup": "zoo runner vs zero",
        "policies": {"runner": "zoo:/nowhere/a.pkl", "blocker": "zero"},
        "seed": 0,
        "episodes": 20,
        "seats": {"runner": _score(19), "blocker": _score(1)},
    }


def test_legacy_evaluate_results_take_their_recipe_from_the_config():
    old = _match().to_json()  # results.json as `arena evaluate` wrote it before
    config = {
        "env": "toy_pass_v0",
        "policies": {"runner": {"spec": f"sb3:{RUNNER}", "sha256": "x"}, "blocker": "random"},
        "attacks": {"runner": "noise:eps=0.1"},
        "seed": 3,
        "deterministic": False,
        "record": "/somewhere/rec",
    }
    typed = RunResults.from_json(old, "results.json", config=config)
    assert typed.kind == "evaluate" and typed.headline is not None
    assert typed.headline.highlight == (0,) and typed.records == ("/somewhere/rec",)
    (sample,) = typed.samples
    assert sample.policies == {"runner": f"sb3:{RUNNER}", "blocker": "random"}
    assert sample.deterministic is False and sample.seed == 3
    assert typed.extra["lengths"] == old["lengths"]
    # and it reads back as version 1 once written
    assert RunResults.from_json(typed.to_json(), "results.json") == typed


def _adversary(
    directory: Path, *, victim: str = f"sb3:{RUNNER}", trained: bool = False, sampled: bool = False
) -> Path:
    """A training run's marker; with ``trained`` a stand-in for its policy file."""
    from arena.artifacts.training_run import AdversaryConfig, PPOConfig, RunMarker

    config = AdversaryConfig(PPOConfig(), victim_sampled=sampled, env_kwargs={"shaping": 0.0})
    marker = RunMarker("toy_pass_v0", {"runner": victim}, 0, config, adversary_seat="blocker")
    _write(directory / "adversary_run.json", marker.to_json())
    if trained:
        (directory / "policy.zip").write_bytes(b"not read here")
    return directory


def test_legacy_gleave_results_play_the_victim_against_the_adversary(tmp_path):
    adv = _adversary(tmp_path / "adv", trained=True)
    old = {
        "games": {
            "toy_pass": {
                "env": "toy_pass_v0",
                "victim": f"sb3:{RUNNER}",
                "adversary": f"run:{adv}",
                "victim_win_rates": {
                    "normal victim vs adversary": _score(7),
                    "normal victim vs zero": _score(20),
                },
            }
        },
        "timesteps": 4096,
        "episodes": 20,
    }
    typed = RunResults.from_json(old, "results.json", config={"seed": 5})
    assert typed.kind == "gleave2020" and typed.headline is not None
    assert typed.headline.title == "Victim win rates on toy_pass_v0"
    assert typed.headline.highlight == (0,)
    (sample,) = typed.samples
    assert sample.policies == {"runner": f"sb3:{RUNNER}", "blocker": f"run:{adv}"}
    assert sample.deterministic == {"runner": True, "blocker": True} and sample.seed == 5
    assert sample.label == "normal victim vs adversary" and sample.env_kwargs == {"shaping": 0.0}
    assert typed.extra == {"timesteps": 4096, "episodes": 20}
    # a zoo victim plays with sampled actions, as gleave2020 scored it
    zoo = _adversary(tmp_path / "zoo", victim="zoo:kick-and-defend/kicker/a.pkl", trained=True)
    old["games"]["toy_pass"].update(
        victim="zoo:kick-and-defend/kicker/a.pkl", adversary=f"run:{zoo}"
    )
    (sample,) = RunResults.from_json(old, "results.json").samples
    assert sample.deterministic == {"runner": False, "blocker": True}


def test_legacy_training_results_play_the_trained_adversary(tmp_path):
    run = _adversary(tmp_path / "adv", trained=True, sampled=True)
    old = {
        "env": "toy_pass_v0",
        "adversary_seat": "blocker",
        "victims": {"runner": f"sb3:{RUNNER}"},
        "timesteps": 4096,
        "rolling_win_rate": 0.25,
    }
    typed = RunResults.from_json(old, "results.json", run_dir=run)
    assert typed.headline is not None and typed.headline.rows[0][-1] == 0.25
    (sample,) = typed.samples
    assert sample.policies == {"runner": f"sb3:{RUNNER}", "blocker": f"run:{run.resolve()}"}
    assert sample.deterministic == {"runner": False, "blocker": True}  # as it trained
    assert sample.env_kwargs == {"shaping": 0.0}
    assert RunResults.from_json(old, "results.json").samples == ()  # no run dir: no recipe


def test_legacy_zoo_fidelity_and_other_shapes():
    typed = RunResults.from_json({"matchups": [_matchup()]}, "results.json", config={})
    assert typed.headline is not None and typed.headline.highlight == (0,)
    assert typed.samples[0].deterministic is False  # zoo_fidelity samples by default
    demo = [{"env": "toy_pass_v0", "match": "m", "seat": "runner", **_score(3)}]
    (table,) = RunResults.from_json(demo, "results.json").tables
    assert "win rate [95% CI]" in table.columns and "win rate ci95" not in table.columns
    other = RunResults.from_json({"answer": 42, "nested": {"a": [1]}}, "results.json")
    assert other.tables[0].rows == (("answer", 42),) and other.extra == {"nested": {"a": [1]}}


# ---------------------------------------------------------------- evaluate runs


def test_evaluate_run_with_record(cli, tmp_path):
    run = _evaluate(cli, tmp_path, "--record", tmp_path / "rec")
    config = json.loads((run / "config.json").read_text())
    assert config["record"] == str((tmp_path / "rec").resolve())
    result = cli("report", run, "--record", tmp_path / "rec")
    assert result.code == 0, result.err
    page_path = run / "report" / "index.html"
    assert result.out.strip() == f"report written to {page_path}"
    assert sorted(p.name for p in page_path.parent.iterdir()) == [MARKER, "index.html"]
    page = page_path.read_text()
    _offline(page)
    # the finding first: every seat's score with its interval, the attacked seat in bold
    assert _sections(page) == ["Scores on toy_pass_v0 over 4 episodes (seed 0)"]
    table = _headline(page)
    for column in ("win rate [95% CI]", "mean return [95% CI]", "action-flip rate", "attack"):
        assert f'<th scope="col">{column}</th>' in table
    assert re.search(
        rf'<tr class="finding"><th scope="row"><strong>runner</strong></th>'
        rf"<td><strong>{SCORE_CELL}</strong></td>",
        table,
    )
    assert re.search(rf"<tr><th scope=\"row\">blocker</th><td>{SCORE_CELL}</td>", table)
    assert page.index("<table") < page.index("<video") < page.index("<h3>Plots</h3>")
    # plots: win rate with intervals and the action-flip rate, as embedded PNGs
    pngs = re.findall(r'<img src="data:image/png;base64,([^"]+)"', page)
    assert len(pngs) == 2 and all(base64.b64decode(p)[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert "Win rate by seat" in page and "Action-flip rate by attacked seat" in page
    # the recorded episode, re-simulated into an mp4 inside the page
    (mp4,) = _embedded_videos(page)
    assert mp4[4:8] == b"ftyp"
    assert re.search(
        r"record rec: scene video of episode 0, \d+ steps, re-simulated and verified", page
    )
    assert 'data-videos="1"' in page
    # then the configuration and metadata, folded, keys in words
    assert page.index("<h3>Plots</h3>") < page.index("<details>")
    assert "<details><summary>Configuration (config.json)</summary>" in page
    assert "<details open" not in page and "noise:eps=0.1" in page
    assert '<th scope="row">env kwargs</th>' not in page  # {}: a value the run did not use


def test_evaluate_run_without_record_gets_a_sample_episode(cli, tmp_path):
    run = _evaluate(cli, tmp_path)
    out = tmp_path / "page"
    result = cli("report", run, "--out", out)
    assert result.code == 0, result.err
    page = (out / "index.html").read_text()
    assert len(_embedded_videos(page)) == 1
    assert "sample episode played for this report (seed 0): its policies and attacks" in page
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "index.html"]  # record removed


def test_extra_records_are_shown_beside_the_runs_own_episode(cli, tmp_path):
    run = _evaluate(cli, tmp_path)
    result = cli("report", run, "--out", tmp_path / "page", "--record", GOLDEN)
    assert result.code == 0, result.err
    page = (tmp_path / "page" / "index.html").read_text()
    assert _sections(page)[-1] == "Recorded episodes"
    assert len(_embedded_videos(page)) == 2 and f"{GOLDEN}: scene video" in page
    assert "sample episode played for this report" in page


def test_an_old_evaluate_run_still_renders(cli, tmp_path):
    run = _evaluate(cli, tmp_path)
    new = json.loads((run / "results.json").read_text())
    old = {k: new[k] for k in ("env", "episodes", "seed", "seats", "mean_length", "lengths")}
    (run / "results.json").write_text(json.dumps(old))
    page = write_report(run, samples=False).read_text()
    assert re.search(rf"<td><strong>{SCORE_CELL}</strong></td>", _headline(page))
    assert "Other values in results.json" in page and "<video" not in page


# ---------------------------------------------------------------- experiment runs


def _progress(path: Path, n: int = 12) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["timesteps", "win_rate", "episodes", "steps_per_s", "shaping"])
        w.writerow([2048, "nan", 0, 1000.0, 1.0])
        for k in range(1, n):
            w.writerow([2048 * (k + 1), k / n, 50 * k, 1000.0, 1 - k / n])


def _huang_run(root: Path, *, typed: bool = False) -> Path:
    """A run directory as ``arena run huang2017_pong`` writes it (``typed``), or wrote
    it before ``results.json`` had a schema version."""
    run = root / "huang2017_pong" / "atari_pong_v0__s0__x"
    rows = []
    for attack in ("fgsm", "noise"):
        for eps, text in ((0.0, "0"), (0.0005, "0.0005"), (1 / 255, "1/255"), (2 / 255, "2/255")):
            score = 3.0 if attack == "noise" or eps == 0 else 3.0 - 4000 * eps
            rows.append(
                {
                    "victim": "pong_ppo",
                    "attack": attack,
                    "eps": eps,
                    "eps_text": text,
                    "attack_spec": None if eps == 0 else f"{attack}:eps={text}",
                    "episodes": 2,
                    "mean_return": score,
                    "return_ci95": [score - 2, score + 2],
                    "win_rate": 1.0 if score > 0 else 0.0,
                    "win_rate_ci95": [0.0 if score <= 0 else 0.34, 1.0 if score > 0 else 0.66],
                    "flip_rate": None if eps == 0 else min(1.0, 200 * eps),
                    "attacked_fraction": None if eps == 0 else 1.0,
                }
            )
    _write(
        run / "config.json",
        {
            "experiment": "huang2017_pong",
            "env": "atari_pong_v0",
            "victims": {"pong_ppo": {"spec": "atari:/nowhere/pong_ppo.npz", "kind": "atari"}},
            "attacks": {"fgsm": "fgsm:eps={eps}", "noise": "noise:eps={eps}"},
            "eps": ["0", "0.0005", "1/255", "2/255"],
            "episodes": 2,
            "env_kwargs": {"max_episode_steps": 100},
            "seed": 0,
        },
    )
    _write(run / "metadata.json", {"git_sha": "abc", "versions": {"numpy": "2"}})
    _write(run / "results.json", _typed_huang(rows).to_json() if typed else {"rows": rows})
    return run


def _typed_huang(rows: list[dict[str, Any]]) -> RunResults:
    """The same rows as ``huang2017_pong`` types them now."""
    from arena.artifacts.run_sweep import SweepPoint, sweep_results
    from arena.evaluation import SeatResult
    from experiments.huang2017_pong import ENV_ID, EPS_UNITS, SEAT

    def point(r: dict[str, Any]) -> SweepPoint:
        wins = round(r["win_rate"] * r["episodes"])
        score = SeatResult(
            wins=wins,
            losses=r["episodes"] - wins,
            ties=0,
            win_rate=r["win_rate"],
            win_rate_ci95=tuple(r["win_rate_ci95"]),
            mean_return=r["mean_return"],
            std_return=1.0,
            return_ci95=tuple(r["return_ci95"]),
            flip_rate=r["flip_rate"],
            attacked_fraction=r["attacked_fraction"],
        )
        fields = ("victim", "attack", "eps", "eps_text", "attack_spec", "episodes")
        return SweepPoint(*(r[k] for k in fields), score=score)

    victims = {"pong_ppo": "atari:/nowhere/pong_ppo.npz"}
    return sweep_results(
        [point(r) for r in rows],
        EPS_UNITS,
        env=ENV_ID,
        seat=SEAT,
        victims=victims,
        seed=0,
        env_kwargs={"max_episode_steps": 100},
    )


@pytest.mark.parametrize("typed", [True, False], ids=["typed", "legacy"])
def test_huang_run_score_and_flip_rate_vs_eps(tmp_path, typed):
    run = _huang_run(tmp_path, typed=typed)
    page = write_report(run, samples=False).read_text()
    _offline(page)
    assert _sections(page) == ["Score vs ε on atari_pong_v0"]
    table = _headline(page)
    assert "mean score [95% CI]" in table and "win rate [95% CI]" in table
    assert "<td>-12.69 [-14.7, -10.7]</td>" in table  # fgsm at 1/255
    assert "<td><strong>-28.37 [-30.4, -26.4]</strong></td>" in table  # the largest ε
    assert "Mean score vs ε" in page and "Action-flip rate vs ε" in page
    assert len(re.findall(r'<img src="data:image/png', page)) == 2
    assert "<video" not in page


@pytest.mark.parametrize("typed", [True, False], ids=["typed", "legacy"])
def test_huang_run_sample_episode_failure_is_a_note(tmp_path, typed):
    run = _huang_run(tmp_path, typed=typed)
    (sample,) = read_run(run, ".").samples  # the first victim at the largest ε
    assert sample.policies == {"player": "atari:/nowhere/pong_ppo.npz"}
    assert sample.attacks == {"player": "fgsm:eps=2/255"} and sample.seed == 0
    assert sample.env_kwargs == {"max_episode_steps": 100} and sample.deterministic is True
    page = write_report(run, out=tmp_path / "page").read_text()
    assert "no sample episode" in page and "/nowhere/pong_ppo.npz" in page
    assert "<video" not in page


def _gleave_run(root: Path) -> Path:
    """A run directory shaped as ``arena run gleave2020 --quick`` writes it."""
    run = root / "gleave2020" / "toy_pass__s0__x"
    adv = run / "adversaries" / "toy_pass"
    _write(
        run / "config.json",
        {
            "quick": True,
            "games": "toy_pass",
            "timesteps": 24576,
            "adversary": [],
            "variant_run": [],
            "seed": 0,
        },
    )
    _write(run / "metadata.json", {"git_sha": None, "versions": {"numpy": "2"}})
    labels = [
        f"{v} victim vs {o}"
        for v in ("normal", "masked")
        for o in ("adversary", "normal opponent", "random", "zero")
    ]
    rows = {
        label: _score(wins)
        for label, wins in zip(labels, (3, 20, 20, 20, 9, 20, 20, 19), strict=True)
    }
    _write(
        run / "results.json",
        {
            "games": {
                "toy_pass": {
                    "env": "toy_pass_v0",
                    "victim": f"sb3:{RUNNER}",
                    "adversary": f"run:{adv}",
                    "victim_win_rates": rows,
                }
            },
            "timesteps": 24576,
            "episodes": 20,
        },
    )
    _adversary(adv)  # training unfinished: no policy.zip, no results.json
    _progress(adv / "progress.csv")
    (adv / "checkpoints").mkdir()
    _write(adv / "checkpoints" / "state.json", {"ignored": True})
    # a figure the experiment saved itself
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 2))
    FigureCanvasAgg(fig)
    fig.add_subplot().plot([0, 1], [0, 1])
    fig.savefig(run / "toy_pass_training.png")
    return run


def test_gleave_run_finding_first_then_plots_then_folded(tmp_path):
    run = _gleave_run(tmp_path)
    page = write_report(run, out=tmp_path / "page").read_text()
    _offline(page)
    assert _sections(page) == [
        "Adversarial policies against frozen victims: toy_pass",
        "Adversary training (unfinished)",
        "Notes",
    ]
    table = _headline(page)
    assert table.startswith('<table class="results headline">')
    assert "<strong>normal victim vs adversary</strong>" in table
    assert "<td><strong>0.15 [0, 0.35]</strong></td>" in table  # the finding, with its interval
    assert '<th scope="row">normal victim vs zero</th><td>1 [0.8, 1]</td>' in table
    # the headline matchup is played: here the adversary's checkpoint is broken, a note
    assert "toy_pass__s0__x: no sample episode (PolicySpecError: " in page
    assert "adversaries/toy_pass: no sample episode (PolicySpecError: " in page
    assert "Win rate over training (last: 0.92 at 24,576 steps" in page
    assert "toy_pass_training.png" in page
    assert "toy_pass/checkpoints</code>" not in page  # checkpoints are not runs
    assert len(re.findall(r'<img src="data:image/png', page)) == 3  # bars, saved, curve
    # configuration folded, keys in words, values the run did not use left out
    assert '<th scope="row">timesteps</th><td>24576</td>' in page
    assert "variant run" not in page and "victim_win_rates" not in page
    assert page.index("<h3>Plots</h3>") < page.index("<details><summary>Configuration")


def test_gleave_reward_study_curves_and_final_scores(tmp_path):
    run = tmp_path / "gleave2020" / "study"
    _write(run / "config.json", {"reward_study": True})
    variants = {}
    for k, label in enumerate(("sparse", "game shaping (c)")):
        variants[label] = {
            "run": f"/runs/{k}",
            "timesteps": [2048, 4096, 6144],
            "win_rate": [0.0, 0.1 * k, 0.2 * k],
            "victim_vs_final_adversary": _score(10 - 5 * k),
        }
    _write(run / "results.json", {"games": {"toy_pass": variants}, "timesteps": 6144})
    _adversary(run / "adversaries" / "toy_pass__sparse")
    page = write_report(run).read_text()
    assert "toy_pass: adversary win rate over training, per reward variant" in page
    assert "<td>/runs/1</td>" in page and "victim win rate against each final adversary" in page
    table = _headline(page)
    assert "<strong>game shaping (c)</strong>" in table  # the strongest adversary
    assert "<td><strong>0.25 [0.05, 0.45]</strong></td>" in table
    assert "adversaries/toy_pass__sparse: no sample episode: no policy or checkpoint" in page


def test_gleave_run_with_a_given_adversary_plays_its_finding(cli, tmp_path):
    """A typed gleave2020 run (nothing trained: the adversary given is no run:DIR): the
    normal victim against the adversary beside the baselines, the masked victim in a
    column of its own, and an episode of the finding played from its recipe."""
    done = cli(
        "run", "gleave2020", "--quick", "--adversary", "toy_pass=zero", "--episodes", "4",
        "--workers", "1", "--runs", tmp_path / "runs",
    )  # fmt: skip
    assert done.code == 0, done.err
    run = _run_dir(tmp_path / "runs")
    assert json.loads((run / "results.json").read_text())["schema_version"] == 1
    page = write_report(run, out=tmp_path / "page").read_text()
    assert _sections(page) == ["Adversarial policies against frozen victims: toy_pass"]
    table = _headline(page)
    for kind in ("normal", "masked"):
        assert f'<th scope="col">{kind} victim win rate [95% CI]</th>' in table
    assert re.search(
        r'<tr class="finding"><th scope="row"><strong>toy_pass_v0</strong></th>'
        rf"<td><strong>adversary</strong></td>(<td><strong>{SCORE_CELL}</strong></td>){{2}}",
        table,
    )
    for baseline in ("normal opponent", "random", "zero"):
        assert re.search(rf"<td>{baseline}</td>(<td>{SCORE_CELL}</td>){{2}}</tr>", table)
    assert "Victim win rates on toy_pass_v0" in page  # every matchup, with W/L/T
    assert len(_embedded_videos(page)) == 1
    assert "(seed 0): normal victim vs adversary: scene video of episode 0" in page
    assert '<th scope="row">timesteps</th>' not in page  # it trained nothing


def test_demo_run_is_typed(tmp_path, monkeypatch):
    import arena.demo

    monkeypatch.setattr(arena.demo, "ADVERSARY_STEPS", 2048)
    code = arena.demo.run_demo(out=tmp_path / "demo", retrain=False, workers=1, episodes=2)
    assert code == 0
    (run,) = (tmp_path / "demo").iterdir()
    results = RunResults.from_json(json.loads((run / "results.json").read_text()))
    assert results.records == ("records/toy_pass_v0", "records/toy_catch_v0")
    replays = results.table("Replay of 2 recorded episodes")
    assert replays.column("record") == results.records
    assert replays.column("replay --verify: exact match") == (True, True)
    headline = results.headline
    assert headline is not None and headline.columns[:2] == ("game: match", "win rate [95% CI]")
    found = [headline.rows[i][0] for i in headline.highlight]
    assert "toy_pass_v0: trained runner vs adversarial blocker" in found
    assert "toy_catch_v0: trained player, fgsm:eps=0.3" in found
    assert "toy_pass_v0: trained runner vs zero blocker" not in found
    # its recipes name the adversary where it lies now, not where it was trained
    assert results.samples[0].policies["blocker"] == f"run:{run / 'adversary'}"
    specs = [spec for s in results.samples for spec in s.policies.values()]
    assert not any(".tmp" in spec for spec in specs)


@pytest.mark.parametrize("typed", [True, False], ids=["typed", "legacy"])
def test_zoo_fidelity_run(tmp_path, typed):
    from arena.artifacts.run_builders import Matchup
    from arena.artifacts.run_legacy_fields import seat
    from experiments.zoo_fidelity import MATCHUP_KEYS, fidelity_results

    run = tmp_path / "zoo_fidelity" / "x"
    old = _matchup()
    _write(run / "config.json", {"episodes": 20, "deterministic": False, "env_kwargs": {}})
    if typed:
        seats = {s: seat(v, s) for s, v in old["seats"].items()}
        timing = dict(zip(MATCHUP_KEYS, (20, 31.5, 2.0, 10.0), strict=True))
        played = Matchup(old["env"], old["matchup"], old["policies"], seats, 0, timing)
        _write(run / "results.json", fidelity_results([played], False, {}).to_json())
    else:
        _write(run / "results.json", {"matchups": [old]})
    page = write_report(run, samples=False).read_text()
    assert "<strong>toy_pass_v0: zoo runner vs zero, runner</strong>" in _headline(page)
    assert re.search(rf"<td><strong>{SCORE_CELL}</strong></td>", _headline(page))
    (sample,) = read_run(run, ".").samples
    assert sample.policies == old["policies"] and sample.deterministic is False
    if typed:  # the matchups' timing: a table of its own
        assert (
            "<td>zoo runner vs zero</td><td>runner: zoo:/nowhere/a.pkl, blocker: zero</td>" in page
        )
        assert '<th scope="col">episodes per second</th>' in page


# ---------------------------------------------------------------- the page as a whole


def test_report_is_replaced_whole_and_atomically(tmp_path, monkeypatch):
    from arena.report import html

    run = _gleave_run(tmp_path)
    out = tmp_path / "page"
    write_report(run, out=out, samples=False)
    first = (out / "index.html").read_text()

    def broken(page):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(html, "render_page", broken)
    with pytest.raises(RuntimeError, match="interrupted"):
        write_report(run, out=out, samples=False)
    assert (out / "index.html").read_text() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gleave2020", "page"]
    monkeypatch.undo()
    write_report(run, out=out, samples=False)
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "index.html"]


def test_large_videos_go_next_to_the_page(cli, tmp_path, monkeypatch):
    from arena.report import media

    monkeypatch.setattr(media, "INLINE_MAX_BYTES", 100)
    run = _evaluate(cli, tmp_path, "--record", tmp_path / "rec")
    page_path = write_report(run, out=tmp_path / "page")
    files = sorted(p.name for p in page_path.parent.iterdir())
    assert files[0] == MARKER and files[2] == "index.html" and files[1].endswith("_ep0.mp4")
    page = page_path.read_text()
    assert f'<source src="{files[1]}"' in page and "keep the two together" in page


def test_values_are_escaped(tmp_path):
    run = tmp_path / "run"
    _write(run / "config.json", {"note": "<script>alert(1)</script>"})
    _write(run / "results.json", {"<b>key</b>": "<img src=x>"})
    page = write_report(run).read_text()
    assert "<script>alert" not in page and "<img src=x>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_a_wrongly_typed_results_file_is_one_line(cli, tmp_path):
    run = _evaluate(cli, tmp_path)
    data = json.loads((run / "results.json").read_text())
    data["samples"][0]["seed"] = "abc"
    (run / "results.json").write_text(json.dumps(data))
    assert_one_line_error(cli("report", run), "results.json: samples[0].seed", "'abc'")
    assert not (run / "report").exists()


@pytest.mark.parametrize(
    ("case", "fragments"),
    [
        ("missing run", ("no run directory at",)),
        ("nothing to report", ("nothing to report in",)),
        ("foreign out", ("is not empty and is not an arena report",)),
        ("bad record", ("no record at",)),
    ],
)
def test_bad_input_is_one_line_exit_2(cli, tmp_path, case, fragments):
    run, extra = _gleave_run(tmp_path), []
    if case == "missing run":
        run = tmp_path / "nope"
    elif case == "nothing to report":
        run = tmp_path / "empty"
        run.mkdir()
    elif case == "foreign out":
        (tmp_path / "mine").mkdir()
        (tmp_path / "mine" / "notes.txt").write_text("keep")
        extra = ["--out", tmp_path / "mine"]
    elif case == "bad record":
        extra = ["--record", tmp_path / "nope"]
    assert_one_line_error(cli("report", run, *extra), *fragments)
    if case == "foreign out":
        assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]
    assert not (run / "report").exists()


# ---------------------------------------------------------------- headless Chromium


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Chromium:
    """Headless Chromium driven over the DevTools protocol on a pipe (fds 3 and 4).

    No extra package: messages are JSON objects terminated by a NUL byte.
    """

    def __init__(self, exe: str, *, width: int = 1400, height: int = 1000):
        self.profile = tempfile.mkdtemp(prefix="arena-chromium-")
        to_r, self._w = os.pipe()
        self._r, from_w = os.pipe()

        def child() -> None:  # chromium reads fd 3 and writes fd 4
            r, w = os.dup(to_r), os.dup(from_w)  # fresh numbers: dup2 then clears CLOEXEC
            os.dup2(r, 3)
            os.dup2(w, 4)

        self.proc = subprocess.Popen(
            [
                exe,
                "--headless",
                "--remote-debugging-pipe",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--mute-audio",
                "--autoplay-policy=no-user-gesture-required",
                f"--user-data-dir={self.profile}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            preexec_fn=child,
            close_fds=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_r)
        os.close(from_w)
        self._buf = b""
        self._id = 0
        self.session: str | None = None

    def send(self, method: str, params: dict | None = None, *, timeout: float = 60.0) -> dict:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if self.session and not method.startswith(("Target.", "Browser.")):
            msg["sessionId"] = self.session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" not in self._buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"chromium did not answer {method}")
                if select.select([self._r], [], [], left)[0]:
                    chunk = os.read(self._r, 1 << 20)
                    if not chunk:
                        raise RuntimeError("chromium closed the pipe")
                    self._buf += chunk
            raw, _, self._buf = self._buf.partition(b"\0")
            reply = json.loads(raw)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def open(self, url: str) -> None:
        target = self.send("Target.createTarget", {"url": "about:blank"})
        attached = self.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        self.session = attached["sessionId"]
        self.send("Page.enable")
        self.send("Page.navigate", {"url": url})

    def evaluate(self, expression: str, *, timeout: float = 60.0) -> Any:
        res = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            timeout=timeout,
        )
        if "exceptionDetails" in res:
            raise RuntimeError(str(res["exceptionDetails"]))
        return res["result"].get("value")

    def screenshot(self, path: Path) -> None:
        res = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        path.write_bytes(base64.b64decode(res["data"]))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.send("Browser.close", timeout=5)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._w)
        os.close(self._r)
        shutil.rmtree(self.profile, ignore_errors=True)


_INSPECT = """new Promise(function (resolve) {
  function settled() {
    return document.readyState === 'complete' &&
      [...document.images].every(function (i) { return i.complete; }) &&
      [...document.querySelectorAll('video')].every(function (v) {
        return v.readyState >= 2 || v.dataset.state.indexOf('error') === 0; });
  }
  function before(a, b) {
    return !b || (a && (a.compareDocumentPosition(b) & Node.DOCUMENT_POSITION_FOLLOWING) > 0);
  }
  function report() {
    resolve({
      tables: [...document.querySelectorAll('table.results')].map(function (t) {
        return {rows: t.rows.length, text: t.innerText}; }),
      images: [...document.images].map(function (i) {
        return {w: i.naturalWidth, h: i.naturalHeight, alt: i.alt}; }),
      videos: [...document.querySelectorAll('video')].map(function (v) {
        return {readyState: v.readyState, duration: v.duration, width: v.videoWidth,
                height: v.videoHeight, state: v.dataset.state,
                error: v.error ? v.error.code : null}; }),
      declared: Number(document.body.dataset.videos),
      sections: [...document.querySelectorAll('section.run:not(.notes)')].map(function (s) {
        var table = s.querySelector('table'), video = s.querySelector('video');
        var bold = table ? [...table.querySelectorAll('tr.finding strong')] : [];
        return {
          heading: s.querySelector('h2').innerText,
          headlineFirst: !!table && table.classList.contains('headline') &&
            before(table, s.querySelector('img')) && before(table, s.querySelector('details')),
          finding: bold.map(function (b) { return b.innerText; }),
          videos: s.querySelectorAll('video').length,
          videoFirst: before(video, s.querySelector('img')),
          details: [...s.querySelectorAll('details')].map(function (d) {
            var t = d.querySelector('table'), out = {open: d.open,
              summary: d.querySelector('summary').innerText, shown: !!t && t.checkVisibility()};
            d.open = true;  // a reader's click unfolds it
            out.unfolded = !!t && t.checkVisibility();
            d.open = out.open;
            return out; }),
        }; }),
      headings: [...document.querySelectorAll('h1,h2,h3,h4,h5,h6,summary,thead th,caption')]
        .map(function (h) { return h.innerText; }),
    });
  }
  var timer = setInterval(function () {
    if (settled()) { clearInterval(timer); report(); } }, 100);
  setTimeout(function () { clearInterval(timer); report(); }, 30000);
})"""

SNAKE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")
NAMES = re.compile(r"\b[a-z][a-z0-9_]*_v\d+\b|\b[a-z0-9_]+\.(?:json|csv|png)\b|\btoy_pass\b")
"""What a heading may spell with underscores: game ids, file names, a game's name."""


def open_in_chromium(page: Path, screenshot: Path) -> dict[str, Any]:
    """Load ``page`` in headless Chromium; what it shows (tables, images, videos,
    each run's layout, the headings); a full-page screenshot saved at ``screenshot``."""
    exe = find_chromium()
    assert exe is not None
    browser = Chromium(exe)
    try:
        browser.open(page.resolve().as_uri())
        state = browser.evaluate(_INSPECT, timeout=60)
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        browser.screenshot(screenshot)
    finally:
        browser.close()
    return state


def _check_in_browser(
    page: Path, name: str, *, tables: int, images: int, videos: int, finding: str
) -> dict[str, Any]:
    """The page as a reader sees it: each run's headline table first, the first run's
    finding in bold with its 95% interval, a playable video for every run with
    episodes, configuration and metadata folded, headings in words."""
    shot = SCREENSHOTS / f"{name}.png"
    state = open_in_chromium(page, shot)
    print(f"screenshot of {page}: {shot}")
    assert len(state["tables"]) >= tables, state["tables"]
    for table in state["tables"]:
        assert table["rows"] >= 2
    assert any("[95% CI]" in t["text"] for t in state["tables"])
    assert len(state["images"]) >= images
    assert all(i["w"] > 100 and i["h"] > 100 for i in state["images"]), state["images"]
    assert state["declared"] == len(state["videos"]) >= videos
    for v in state["videos"]:  # each video decoded: metadata, a frame, a duration
        assert v["error"] is None and v["state"] == "loaded", v
        assert v["readyState"] >= 2 and v["duration"] > 0 and v["width"] > 0, v
    first = state["sections"][0]
    assert any(re.fullmatch(finding, text) for text in first["finding"]), first
    assert any(re.fullmatch(r"-?[0-9.]+ \[-?[0-9.]+, -?[0-9.]+\]", t) for t in first["finding"])
    for section in state["sections"]:
        if section["finding"]:
            assert section["headlineFirst"], section
        if section["videos"]:
            assert section["videoFirst"], section  # the episode before the plots
        assert section["details"] or not section["finding"], section
        for d in section["details"]:  # folded: not drawn until a reader unfolds it
            assert not d["open"] and not d["shown"] and d["unfolded"], d
    for heading in state["headings"]:
        assert not SNAKE.search(NAMES.sub("", heading)), heading
    assert shot.stat().st_size > 10_000
    return state


needs_chromium = pytest.mark.skipif(
    find_chromium() is None,
    reason="no chromium on PATH: `make browser` installs Debian's chromium",
)


@pytest.mark.slow
@needs_chromium
def test_reports_in_headless_chromium(cli, tmp_path):
    run = _evaluate(cli, tmp_path, "--record", tmp_path / "rec")
    assert cli("report", run).code == 0
    _check_in_browser(
        run / "report" / "index.html", "evaluate", tables=1, images=2, videos=1, finding="runner"
    )
    gleave = _gleave_run(tmp_path)
    page = write_report(gleave, records=[tmp_path / "rec"])
    _check_in_browser(
        page, "gleave_shape", tables=1, images=3, videos=1, finding="normal victim vs adversary"
    )


def _atari_dir() -> Path | None:
    value = os.environ.get("ARENA_ATARI_DIR")
    path = Path(value) if value else None
    return path if path is not None and (path / "pong_ppo.npz").is_file() else None


def _gleave(cli, runs: Path, *extra: str) -> Path:
    result = cli(
        "run", "gleave2020", "--quick", "--episodes", "10", "--workers", "1", "--runs", runs, *extra
    )
    assert result.code == 0, result.err
    (run,) = (runs / "gleave2020").iterdir()
    assert cli("report", run).code == 0
    return run


@pytest.mark.slow
@needs_chromium
def test_gleave_quick_run_report_in_chromium(cli, tmp_path):
    run = _gleave(cli, tmp_path / "runs", "--timesteps", "4096")
    # the headline matchup (normal victim vs adversary) and the trained adversary: one
    # episode each
    state = _check_in_browser(
        run / "report" / "index.html",
        "gleave2020",
        tables=1,
        images=3,
        videos=2,
        finding="adversary",  # the row of the headline: the victims vs the adversary
    )
    assert [s["videos"] for s in state["sections"]] == [1, 1]
    # with an adversary given (nothing trained, nothing nested): still the episode
    # inside the runs directory the report is given: policies outside it are not played
    adv = shutil.copytree(
        run / "adversaries" / "toy_pass", tmp_path / "again" / "trained_adversary"
    )
    _gleave(cli, tmp_path / "again", "--adversary", f"toy_pass=run:{adv}")
    assert cli("report", tmp_path / "again", "--out", tmp_path / "page").code == 0
    page = tmp_path / "page" / "index.html"
    assert "normal victim vs adversary: scene video of episode 0" in page.read_text()
    state = _check_in_browser(
        page, "gleave2020_given", tables=1, images=1, videos=1, finding="adversary"
    )
    assert [s["videos"] for s in state["sections"]] == [1, 1]


@pytest.mark.slow
@pytest.mark.atari
@pytest.mark.needs_data
@needs_chromium
@pytest.mark.skipif(
    _atari_dir() is None,
    reason="needs the pretrained Atari victims: set ARENA_ATARI_DIR (e.g. ../shared/atari)",
)
def test_huang_run_report_in_chromium(cli, tmp_path):
    result = cli(
        "run",
        "huang2017_pong",
        "--quick",
        "--max-steps",
        "100",
        "--eps",
        "0",
        "0.0005",
        "1/255",
        "--runs",
        tmp_path / "runs",
    )
    assert result.code == 0, result.err
    (run,) = (tmp_path / "runs" / "huang2017_pong").iterdir()
    assert cli("report", run).code == 0
    page = run / "report" / "index.html"
    assert "victim pong_ppo under fgsm:eps=1/255: pixel-attack video" in page.read_text()
    _check_in_browser(page, "huang2017_pong", tables=1, images=3, videos=1, finding="pong_ppo")
