"""The synthetic ground-truth user model: protocol, dynamics, the clickbait trap, generated logs."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from recsim_env.data.log import InteractionLog
from recsim_env.env.vector import RecVectorEnv
from recsim_env.errors import ConfigError
from recsim_env.protocols import UserModel
from recsim_env.users.synthetic import LongTermConfig, ReturningSyntheticUserModel, SyntheticConfig, SyntheticUserModel


@pytest.fixture(scope="module")
def model() -> SyntheticUserModel:
    return SyntheticUserModel(SyntheticConfig(n_items=200, n_users=300))


def test_is_a_user_model(model, rng):
    assert isinstance(model, UserModel)
    state = model.sample(4, rng)
    assert model.features(state).shape == (4, model.n_user_features)
    assert model.user_index(state).dtype == np.int64 and model.user_index(state).max() < model.n_logged_users


def test_consumption_drifts_interest_and_builds_fatigue(model, rng):
    state = model.state_for(np.zeros(1, dtype=np.int64))
    item = np.array([[7, 8]])
    topic = model.item_topic[7]
    before = state.interest[0, topic]
    responses = model.respond(state, item, np.ones((1, 2), bool), rng)
    forced = responses._replace(choice=np.array([0]))
    model.update(state, item, forced, rng)
    assert state.interest[0, topic] > before
    assert state.fatigue[0, topic] == 1.0
    fresh = model.state_for(np.zeros(1, dtype=np.int64))
    gained = state.interest[0, topic] - before
    penalty = model.config.fatigue_weight * 1.0
    expected = model.true_utilities(fresh, item)[0, 0] + gained - penalty
    assert model.true_utilities(state, item)[0, 0] == pytest.approx(expected)


def _episode_clicks(model, scores_of, seed: int, n: int = 512) -> tuple[float, float]:
    """Mean clicks per episode and mean episode length of a policy ranking candidates by a score."""
    env = RecVectorEnv(model, model.catalog(), num_envs=n, step_cap=100)
    obs, _ = env.reset(seed=seed)
    totals, lengths, active = np.zeros(n), np.zeros(n), np.ones(n, bool)
    for _ in range(100):
        action = np.argsort(-scores_of(env, obs["candidates"]), axis=1)[:, :10]
        obs, reward, term, trunc, _ = env.step(action)
        totals += reward * active
        lengths += active
        active &= ~(term | trunc)
    return totals.mean(), lengths.mean()


def test_click_greedy_policy_is_beaten_by_a_quality_aware_one(model):
    def greedy(env, cands):  # the myopic oracle: highest true click utility
        return model.true_utilities(env.user_state, cands)

    def quality_aware(env, cands):  # trades some attractiveness for quality
        return model.true_utilities(env.user_state, cands) + 3.0 * model.item_quality[cands]

    greedy_clicks, greedy_len = _episode_clicks(model, greedy, seed=1)
    quality_clicks, quality_len = _episode_clicks(model, quality_aware, seed=1)
    assert quality_len > 1.5 * greedy_len
    assert quality_clicks > 1.2 * greedy_clicks


def test_generate_log_is_an_interaction_log(model, rng):
    log = model.generate_log(50, rng)
    assert isinstance(log, InteractionLog)
    assert log.n_users == 50 and log.n_items == model.n_items and log.n_interactions > 100
    inter = log.interactions
    assert inter["user"].max() < 50 and inter["rating"].between(1, 5).all() and (inter["dwell"] > 0).all()
    assert (inter.groupby("user")["timestamp"].diff().dropna() > 0).all()
    # Genres are the true topics; ratings rise with item quality.
    assert log.items["genres"].iloc[3] == (f"topic{model.item_topic[3]}",)
    quality = model.item_quality[inter["item"].to_numpy()]
    assert np.corrcoef(quality, inter["rating"])[0, 1] > 0.3


def test_generate_log_is_reproducible(model):
    a = model.generate_log(20, np.random.default_rng(5)).interactions
    b = model.generate_log(20, np.random.default_rng(5)).interactions
    assert a.equals(b)


def test_generated_logs_are_those_of_the_code_before_the_scale_changes():
    """Known answer: hashes of two small logs generated before the catalogue's popularity stopped building a
    users x items table (issue #13); any change to the generator's draws or output changes them."""
    config = SyntheticConfig(n_items=300, n_users=200, seed=5)
    session = SyntheticUserModel(config).generate_log(200, np.random.default_rng(1))
    lifetimes = ReturningSyntheticUserModel(config, LongTermConfig(no_click_leave=0.0)).generate_log(
        200, np.random.default_rng(1), horizon_days=20)
    assert (_log_hash(session), session.n_interactions) == ("1881ec4dac566795", 2951)
    assert (_log_hash(lifetimes), lifetimes.n_interactions) == ("120ea0aa373d584a", 9729)


def _log_hash(log: InteractionLog) -> str:
    digest = hashlib.sha256()
    for column in log.interactions.columns:
        digest.update(log.interactions[column].to_numpy().tobytes())
    digest.update(log.fingerprint().encode())
    return digest.hexdigest()[:16]


def test_catalog_popularity_is_the_population_mean_attractiveness():
    """Gathered from topics, it equals the direct users x items mean (float32, bit for bit on these worlds)."""
    for config in (SyntheticConfig(n_items=777, n_users=333, n_topics=7, seed=3),
                   SyntheticConfig(n_items=50, n_users=5000, clickbait_appeal=0.3)):
        world = SyntheticUserModel(config)
        attract = np.exp(world.population_interest[:, world.item_topic] + world.item_appeal).mean(axis=0)
        np.testing.assert_array_equal(world.catalog().popularity, (attract / attract.sum()).astype(np.float32))


def test_generate_log_refuses_more_users_than_the_population(model, rng):
    with pytest.raises(ConfigError, match="n_users must be in"):
        model.generate_log(301, rng)


def test_catalog_matches_the_items(model):
    cat = model.catalog()
    assert cat.n_items == model.n_items and cat.n_genres == model.config.n_topics
    np.testing.assert_array_equal(cat.genres.argmax(axis=1), model.item_topic)
    assert cat.popularity.sum() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("field, value", [("n_items", 0), ("drift_rate", -0.1), ("fatigue_decay", 1.0),
                                          ("temperature", 0.0), ("time_budget", float("nan"))])
def test_bad_synthetic_config_is_refused(field, value):
    with pytest.raises(ConfigError, match=f"SyntheticConfig.{field}"):
        SyntheticConfig(**{field: value})


class _ReversedPolicy:
    """A Recommender that shows the last candidates, in reverse order."""

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        n, c = observation["candidates"].shape
        return np.tile(np.arange(c - 1, c - 11, -1), (n, 1)), state


def test_generate_log_follows_a_given_policy(model):
    log = model.generate_log(10, np.random.default_rng(0), policy=_ReversedPolicy(), n_candidates=50)
    default = model.generate_log(10, np.random.default_rng(0), n_candidates=50)
    assert log.n_interactions > 0 and not log.interactions["item"].equals(default.interactions["item"])


def test_one_user_responses_match_the_batched_ones_in_distribution(model):
    """The scalar one-user path of respond/update follows the batched rules (the single env uses it)."""
    rng = np.random.default_rng(4)
    slate = np.arange(0, 50, 5)[None]
    valid = np.ones((1, 10), dtype=bool)
    one = [model.respond(model.state_for([3]), slate, valid, rng) for _ in range(3000)]
    many = model.respond(model.state_for(np.full(3000, 3)), np.repeat(slate, 3000, 0), np.repeat(valid, 3000, 0), rng)
    clicks_one = np.concatenate([r.click for r in one]).mean(axis=0)
    np.testing.assert_allclose(clicks_one, many.click.mean(axis=0), atol=0.035)
    for key in ("rating", "like", "dwell"):
        total_one = np.concatenate([getattr(r, key) for r in one]).sum() / max(clicks_one.sum() * 3000, 1)
        total_many = getattr(many, key).sum() / max(many.click.sum(), 1)
        assert total_one == pytest.approx(total_many, rel=0.06), key
    # update: the same state change for a click on one user as for that user in a batch of two.
    clicked = next(r for r in one if r.choice[0] >= 0)
    single, pair = model.state_for([3]), model.state_for([3, 3])
    model.update(single, slate, clicked, rng)
    model.update(pair, np.repeat(slate, 2, 0), type(clicked)(*(np.repeat(a, 2, 0) for a in clicked)), rng)
    for key in ("interest", "fatigue", "budget"):
        np.testing.assert_allclose(getattr(single, key)[0], getattr(pair, key)[0], rtol=1e-12)
