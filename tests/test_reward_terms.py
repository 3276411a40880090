"""The adversary's optional victim-aware reward terms (issue 5, point 6)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import envs
from agents import specs
from arena.embedding import EmbeddedVecEnv
from arena.rewards import LinearAnneal, VictimDivergence, action_distance


def _victim(runner_zip):
    spec = envs.spec("toy_pass_v0")
    env = envs.make("toy_pass_v0")
    return specs.resolve(
        f"sb3:{runner_zip}",
        env.observation_space("runner"),
        env.action_space("runner"),
        env_id=spec.id,
        seat="runner",
    )


def test_action_divergence_is_the_w2_distance_to_the_masked_view(runner_zip):
    victim = _victim(runner_zip)
    kwargs = {"n_envs": 2, "seed": 1}
    vec = VictimDivergence(
        EmbeddedVecEnv("toy_pass_v0", "blocker", {"runner": victim}, **kwargs), LinearAnneal(2.0)
    )
    plain = EmbeddedVecEnv("toy_pass_v0", "blocker", {"runner": victim}, **kwargs)
    vec.reset()
    plain.reset()
    start = vec.game.obs["runner"][:, 4:8].copy()  # toy_pass: the opponent's entries
    rng = np.random.default_rng(0)
    terms = []
    for _ in range(300):
        act = rng.uniform(-1, 1, size=(2, 2)).astype(np.float32)
        _, rew, done, _ = vec.step(act)
        _, base, _, _ = plain.step(act)
        obs = vec.game.obs["runner"]
        masked = obs.copy()
        masked[:, 4:8] = start
        with torch.no_grad():
            p = victim.distribution(victim.input_from_obs(obs))
            q = victim.distribution(victim.input_from_obs(masked))
        # toy runner: a diagonal Gaussian with state-independent σ: W2² = mean (Δμ)²
        w2 = ((p.mean - q.mean) ** 2).reshape(2, -1).mean(1).numpy()
        expected = np.where(done, 0.0, 2.0 * w2)
        np.testing.assert_allclose(rew - base, expected, rtol=1e-4, atol=1e-5)
        terms.append(expected[0])
        start[done] = obs[done][:, 4:8]
        if done[0]:
            break
    assert max(terms) > 1e-4  # the opponent moved, the victim noticed


def test_action_distance_of_categorical_policies_is_total_variation():
    logits = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [10.0, -10.0]])
    d = action_distance(torch.distributions.Categorical(logits=logits), 2)
    np.testing.assert_allclose(d, [0.0, 0.5], atol=1e-6)


def test_action_divergence_needs_a_differentiable_victim():
    game = EmbeddedVecEnv("toy_pass_v0", "blocker", {"runner": "random"}, n_envs=1)
    with pytest.raises(ValueError, match="differentiable victim"):
        VictimDivergence(game, LinearAnneal(1.0))


def test_victim_reward_is_minus_the_victims_dense_reward(runner_zip):
    from arena.rewards import VictimReward

    game = EmbeddedVecEnv("toy_pass_v0", "blocker", {"runner": f"sb3:{runner_zip}"}, n_envs=2)
    plain = EmbeddedVecEnv("toy_pass_v0", "blocker", {"runner": f"sb3:{runner_zip}"}, n_envs=2)
    vec = VictimReward(game, LinearAnneal(3.0), key="shaping")
    vec.reset()
    plain.reset()
    moved = False
    for _ in range(20):
        act = np.full((2, 2), 0.5, np.float32)
        _, rew, _, _ = vec.step(act)
        _, base, _, _ = plain.step(act)
        runner = np.array([i["runner"]["shaping"] for i in game.infos])
        np.testing.assert_allclose(rew - base, -3.0 * runner, atol=1e-6)
        moved |= bool(np.any(runner != 0))
    assert moved


def test_victim_novelty_falls_as_the_victim_sees_the_same_states(runner_zip):
    """RND: the predictor learns the states it is shown, so the term for a victim that
    keeps seeing one state falls; a state never seen stands out."""
    import torch

    from arena.rewards import VictimNovelty

    game = EmbeddedVecEnv("toy_pass_v0", "blocker", {"runner": f"sb3:{runner_zip}"}, n_envs=4)
    vec = VictimNovelty(game, LinearAnneal(1.0), seed=0, lr=1e-2)
    game.reset()
    fixed = np.tile(game.obs["runner"][:1], (4, 1))
    game.obs = {**game.obs, "runner": fixed}
    dones = np.zeros(4, dtype=bool)
    first = vec.term(dones, [{}] * 4)
    for _ in range(200):
        last = vec.term(dones, [{}] * 4)
    assert last.mean() < 0.2 * first.mean()
    z = np.clip((fixed[:1] + 3.0 - vec.obs_stats.mean) / np.sqrt(vec.obs_stats.var + 1e-8), -5, 5)
    with torch.no_grad():
        x = torch.as_tensor(z, dtype=torch.float32)
        new = float(((vec.predictor(x) - vec.target(x)) ** 2).mean())
        x = torch.as_tensor(
            (fixed[:1] - vec.obs_stats.mean) / np.sqrt(vec.obs_stats.var + 1e-8),
            dtype=torch.float32,
        )
        seen = float(((vec.predictor(x) - vec.target(x)) ** 2).mean())
    assert new > 10 * seen


def test_the_victim_value_sees_the_state_its_victim_carries_restarted_at_new_episodes():
    """The victim-value term asks for V(o) with the state the victim carries into o:
    zeros where the episode just began (its observation is the next episode's first)."""
    game = EmbeddedVecEnv("toy_pass_v0", "blocker", {"runner": "random"}, n_envs=3)
    game.reset()
    assert game.victim_state("runner") is None
    carried = torch.ones(3, 4, 5)
    game.states["runner"] = carried
    game._starts = np.array([False, True, False])
    seen = game.victim_state("runner")
    assert seen[1].abs().sum() == 0 and torch.equal(seen[[0, 2]], carried[[0, 2]])
    assert carried.sum() == 60  # the victim's own state is untouched
    game._starts = np.zeros(3, dtype=bool)
    assert game.victim_state("runner") is carried
    game.close()


def test_flat_win_pays_every_win_the_goal_reward_and_leaves_the_rest():
    from arena.rewards import FlatWin

    game = EmbeddedVecEnv("you_shall_not_pass_v0", "blocker", {"runner": "zero"}, n_envs=1)
    term = FlatWin(game, goal=1000.0)
    infos = [
        {"reward_remaining": 2000.0, "outcome": "win"},  # the keeper's bonuses
        {"reward_remaining": 0.0, "outcome": "win"},  # the blocker's win on time
        {"reward_remaining": 1000.0, "outcome": "win"},
        {"reward_remaining": -1000.0, "outcome": "loss"},
        {"reward_remaining": -1000.0, "outcome": "tie"},  # a keeper's foul
        {"reward_remaining": 0.0},  # mid-episode
    ]
    dones = np.array([True] * 5 + [False])
    np.testing.assert_array_equal(term.term(dones, infos), [-1000, 1000, 0, 0, 0, 0])
    game.close()


def test_flat_win_in_a_game_adds_the_shortfall_of_each_win_and_nothing_else():
    """You-shall-not-pass with a runner that collapses: the blocker wins every episode,
    with 1000 when it is still up as the runner falls and 0 when it fell first; the
    flattened reward is 1000 at every end and 0 elsewhere."""
    from arena.rewards import FlatWin

    kwargs = {"n_envs": 4, "seed": 3, "env_kwargs": {"shaping": 0.0}}  # the goal reward alone
    vec = FlatWin(EmbeddedVecEnv("you_shall_not_pass_v0", "blocker", {"runner": "zero"}, **kwargs),
                  goal=1000.0)  # fmt: skip
    plain = EmbeddedVecEnv("you_shall_not_pass_v0", "blocker", {"runner": "zero"}, **kwargs)
    vec.reset()
    plain.reset()
    rng = np.random.default_rng(0)
    ends: list[tuple[float, float]] = []
    for _ in range(400):
        act = rng.uniform(-0.4, 0.4, size=(4, 17)).astype(np.float32)
        _, rew, done, infos = vec.step(act)
        _, base, _, _ = plain.step(act)
        for i in range(4):
            if done[i]:
                assert infos[i]["outcome"] == "win"
                ends.append((float(base[i]), float(rew[i])))
            else:
                assert rew[i] == base[i]
    assert ends and all(flat == 1000.0 for _, flat in ends)
    assert {game for game, _ in ends} == {0.0, 1000.0}  # both kinds of win were seen


def test_victim_fall_pays_the_drop_of_the_victims_torso_and_sums_to_it():
    """You-shall-not-pass with a runner that collapses (``zero``): per step the term is
    γΦ' − Φ with Φ = −(the runner's torso height), Φ starting at each episode's first
    level; over an episode the undiscounted term (γ = 1) sums to how far the runner sank
    after its first step, which is most of its height."""
    from arena.rewards import VictimFall

    kwargs = {"n_envs": 2, "seed": 5, "env_kwargs": {"shaping": 0.0}}
    vec = VictimFall(
        EmbeddedVecEnv("you_shall_not_pass_v0", "blocker", {"runner": "zero"}, **kwargs),
        LinearAnneal(3.0),
        gamma=1.0,
    )
    plain = EmbeddedVecEnv("you_shall_not_pass_v0", "blocker", {"runner": "zero"}, **kwargs)
    vec.reset()
    plain.reset()
    act = np.zeros((2, 17), dtype=np.float32)
    first: list[float | None] = [None, None]
    total = np.zeros(2)
    ended = []
    for _ in range(400):
        _, rew, done, infos = vec.step(act)
        _, base, _, _ = plain.step(act)
        heights = [info["opponent_height"] for info in infos]
        for i in range(2):
            if first[i] is None:
                first[i] = heights[i]
            total[i] += (rew[i] - base[i]) / 3.0
            if done[i]:
                ended.append((first[i], heights[i], total[i]))
                first[i], total[i] = None, 0.0
    assert len(ended) >= 2
    for start, end, paid in ended:
        assert paid == pytest.approx(start - end, abs=1e-6)
        assert start > 1.0 and end <= 0.3  # the runner stood, then fell: the game's rule


def test_opponent_height_is_the_other_seats_torso_height():
    env = envs.make("kick_and_defend_v0")
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(20):
        act = {s: rng.uniform(-0.4, 0.4, size=17).astype(np.float32) for s in env.agents}
        *_, infos = env.step(act)
        z = [float(env.unwrapped.data.qpos[s.qpos][2]) for s in env.unwrapped._seat]
        assert infos["keeper"]["opponent_height"] == z[0]
        assert infos["kicker"]["opponent_height"] == z[1]
