from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from fakes import Crash, crashing, one_item_vector_env

from agents.sb3_dqn import (
    SB3SlatePolicy,
    batched_discrete_env,
    load_sb3_checkpoint,
    make_sb3_dqn,
    train_sb3_dqn,
    warm_start_in_place,
    warm_start_parameters,
)
from agents.training import TrainConfig
from agents.warm_start import Embeddings
from recsim_env.env.rec_env import RecEnv
from recsim_env.env.vector import RecVectorEnv
from recsim_env.env.wrappers import SingleItemDiscrete
from recsim_env.errors import ArtifactError, ConfigError

QUIET = TrainConfig(total_steps=400, log_interval=200, progress=False)


def _model(seed: int = 0, credit: str = "choice", **kwargs):
    env = batched_discrete_env(one_item_vector_env(num_envs=8), credit=credit)
    return make_sb3_dqn(env, seed=seed, embedding_dim=8, hidden=16, learning_starts=50, batch_size=32,
                        target_update_interval=100, **kwargs)


def test_slate_env_without_the_discrete_view_is_refused() -> None:
    vec = one_item_vector_env()
    with pytest.raises(ConfigError, match="batched_discrete_env"):
        make_sb3_dqn(vec)
    single = RecEnv(vec.user_model, None, vec.config)
    with pytest.raises(ConfigError, match="SingleItemDiscrete"):
        make_sb3_dqn(single)
    make_sb3_dqn(SingleItemDiscrete(single), learning_starts=10)  # the wrapped single env is accepted


def test_q_network_scores_every_candidate_with_one_function() -> None:
    policy = SB3SlatePolicy(_model(), slate_size=2)
    obs, _ = one_item_vector_env(num_envs=4).reset(seed=0)
    q = policy.q_values(obs)
    perm = np.array([5, 4, 3, 2, 1, 0])
    q_perm = policy.q_values({**obs, "candidates": obs["candidates"][:, perm]})
    np.testing.assert_allclose(q_perm, q[:, perm], rtol=1e-5, atol=1e-6)  # permutation-equivariant
    slate, _ = policy.predict({k: v[0] for k, v in obs.items()})
    assert slate.shape == (2,) and slate[0] == q[0].argmax()


def test_warm_start_in_place_and_through_set_parameters_agree() -> None:
    rng = np.random.default_rng(0)
    emb = Embeddings(rng.normal(size=(12, 8)).astype(np.float32), source="test")
    a, b = _model(), _model()
    warm_start_in_place(a, emb)
    b.set_parameters(warm_start_parameters(b, emb), exact_match=False)
    for model in (a, b):
        for net in (model.q_net, model.q_net_target):
            torch.testing.assert_close(net.features_extractor.tower.items.weight[:12], torch.from_numpy(emb.item))
    wrong = Embeddings(emb.item[:10], source="short.npz")
    with pytest.raises(ArtifactError, match="10 rows but the env has 12 items"):
        warm_start_in_place(a, wrong)


def test_same_seed_same_weights_and_checkpoint_resume(tmp_path: Path) -> None:
    first, second = _model(seed=1), _model(seed=1)
    train_sb3_dqn(first, QUIET)
    train_sb3_dqn(second, QUIET, out_dir=tmp_path)
    for p, q in zip(first.policy.parameters(), second.policy.parameters()):
        assert torch.equal(p, q)
    loaded, curve = load_sb3_checkpoint(tmp_path / "checkpoint.pt", batched_discrete_env(one_item_vector_env(8)))
    assert loaded.num_timesteps == 400 and curve and loaded.replay_buffer.size() > 0
    result = train_sb3_dqn(loaded, TrainConfig(total_steps=600, log_interval=200, progress=False), tmp_path, curve)
    assert result.steps == 600 and result.curve[-1]["step"] >= 600
    assert "episode/ctr" in result.curve[-1] and "train/epsilon" in result.curve[-1]


def test_training_without_a_tensorboard_log_makes_no_sb3_temp_folder(tmp_path: Path, monkeypatch) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where SB3's default logger makes SB3-<date>
    result = train_sb3_dqn(_model(seed=1), QUIET)
    assert not list(tmp_path.glob("SB3-*"))
    assert "train/loss" in result.curve[-1]  # the loss still reaches the curve


@pytest.mark.slow
def test_finds_the_item_that_is_always_chosen() -> None:
    model = _model(exploration_fraction=0.5, learning_rate=3e-3)
    train_sb3_dqn(model, TrainConfig(total_steps=8_000, log_interval=4_000, progress=False))
    env = one_item_vector_env(num_envs=64)
    obs, _ = env.reset(seed=3)
    slate, _ = SB3SlatePolicy(model, 2).predict(obs)
    has = (obs["candidates"] == 3).any(1)
    shown = (np.take_along_axis(obs["candidates"], slate, 1) == 3).any(1)
    assert has.sum() > 10 and shown[has].mean() == 1.0


def test_fill_rules_put_the_action_first_then_scores_or_the_cycle() -> None:
    from agents.sb3_dqn import fill_slates

    first = np.array([2, 0])
    assert fill_slates(first, 3, 5, None).tolist() == [[2, 3, 4], [0, 1, 2]]
    scores = np.array([[0.9, 0.1, 0.5, 0.7, 0.3], [0.9, 0.1, 0.5, 0.7, 0.3]])
    assert fill_slates(first, 3, 5, scores).tolist() == [[2, 0, 3], [0, 3, 2]]
    assert fill_slates(np.array([4]), 5, 5, scores[:1])[0].tolist() == [4, 0, 3, 2, 1]


def _catalog(n_items: int = 12):
    from recsim_env.data.catalog import ItemCatalog

    rng = np.random.default_rng(0)
    counts = rng.integers(1, 50, n_items).astype(np.float32)
    return ItemCatalog(item_ids=np.arange(n_items), titles=np.array([f"i{i}" for i in range(n_items)], dtype=object),
                       genres=(rng.random((n_items, 3)) < 0.5).astype(np.float32), genre_names=("a", "b", "c"),
                       years=np.full(n_items, 1990.0, dtype=np.float32), popularity=counts / counts.sum())


def test_q_reads_the_candidates_popularity_and_content_features(tmp_path: Path) -> None:
    from fakes import OneItemUsers

    from agents.sb3_dqn import CandidateFeaturesExtractor, item_features
    from recsim_env.env.vector import RecVectorEnv

    vec = one_item_vector_env(num_envs=4)
    catalog = _catalog()
    env = batched_discrete_env(RecVectorEnv(OneItemUsers(), catalog, vec.config, num_envs=4))
    model = make_sb3_dqn(env, embedding_dim=8, hidden=16, learning_starts=10)
    extractor = model.q_net.features_extractor
    table = item_features(catalog)
    assert table.shape == (12, 1 + 3 + 2) and abs(table[:, 0].mean()) < 1e-5  # standardised log popularity
    torch.testing.assert_close(extractor.item_table[:12], torch.from_numpy(table))
    policy = SB3SlatePolicy(model, slate_size=2)
    env.seed(0)
    obs = env.reset()
    before = policy.q_values(obs)
    with torch.no_grad():
        extractor.item_table[:12, 0] = -extractor.item_table[:12, 0]
    assert not np.allclose(policy.q_values(obs), before)  # popularity is an input of Q
    train_sb3_dqn(model, TrainConfig(total_steps=40, log_interval=20, progress=False), out_dir=tmp_path)
    loaded, _ = load_sb3_checkpoint(tmp_path / "checkpoint.pt")
    np.testing.assert_allclose(SB3SlatePolicy(loaded, 2).q_values(obs), policy.q_values(obs), rtol=1e-5)
    plain = make_sb3_dqn(env, embedding_dim=8, hidden=16, use_item_features=False)
    assert plain.q_net.features_extractor.item_table is None
    with pytest.raises(ConfigError, match=r"item_features must be \(n_items=12, k\), got \(5, 3\)"):
        CandidateFeaturesExtractor(env.observation_space, 8, 16, item_features=np.zeros((5, 3)))


def test_pick_credit_in_the_batched_view_and_slate_returns_in_the_curve(monkeypatch) -> None:
    env = batched_discrete_env(one_item_vector_env(num_envs=8), fill="popularity", credit="pick")  # no model needed
    env.seed(0)
    env.reset()
    picked_and_clicked = other_clicks = 0
    for step in range(20):
        env.step_async(np.full(8, step % 6))
        _, rewards, _, infos = env.step_wait()
        clicks = np.stack([i["click"] for i in infos])
        np.testing.assert_array_equal(rewards, clicks[:, 0])  # default reward = clicks: slot 0's alone
        np.testing.assert_array_equal([i["slate_reward"] for i in infos], clicks.sum(1))
        picked_and_clicked += int(clicks[:, 0].sum())
        other_clicks += int(clicks[:, 1:].sum())
    assert picked_and_clicked > 0 and other_clicks > 0
    # Episode statistics (the curve, TensorBoard) get the slate's reward, not the credited one.
    import agents.sb3_dqn as sb3_dqn

    seen: list[tuple[np.ndarray, np.ndarray]] = []

    class Recording(sb3_dqn.EpisodeTracker):
        def update(self, reward, info, done):
            seen.append((np.array(reward), np.array(info["choice"])))
            super().update(reward, info, done)

    monkeypatch.setattr(sb3_dqn, "EpisodeTracker", Recording)
    model = _model(credit="pick")
    model.get_env().scorer = None  # cyclic fill: item 3, which the users always take, shows in any slot
    train_sb3_dqn(model, TrainConfig(total_steps=400, log_interval=200, progress=False))
    reward, choice = (np.concatenate(x) for x in zip(*seen))
    np.testing.assert_array_equal(reward, choice >= 0)  # one per click, in whichever slot
    assert (choice > 0).any()  # clicks outside slot 0 happened (credited 0 to the learner, 1 here)
    with pytest.raises(ConfigError, match="credit must be one of"):
        batched_discrete_env(one_item_vector_env(num_envs=8), credit="mine")


def test_resume_keeps_the_credit_the_run_was_trained_with(tmp_path: Path) -> None:
    model = make_sb3_dqn(batched_discrete_env(one_item_vector_env(num_envs=8), credit="slate"), embedding_dim=8,
                         hidden=16, learning_starts=50, batch_size=32)
    train_sb3_dqn(model, QUIET, out_dir=tmp_path)
    view = batched_discrete_env(one_item_vector_env(8))  # credit "choice" by default
    assert view.credit == "choice"
    loaded, _ = load_sb3_checkpoint(tmp_path / "checkpoint.pt", view)
    assert view.credit == "slate" and loaded.get_env().credit == "slate"



CrashingVectorEnv = crashing(RecVectorEnv)


def _crashing_model() -> tuple[Any, CrashingVectorEnv]:
    base = one_item_vector_env(num_envs=8)
    vec = CrashingVectorEnv(base.user_model, None, base.config, num_envs=8)
    model = make_sb3_dqn(batched_discrete_env(vec), seed=2, embedding_dim=8, hidden=16, learning_starts=50,
                         batch_size=32, target_update_interval=100, exploration_fraction=0.5)
    return model, vec


def _without_timing(curve: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{k: v for k, v in row.items() if not k.startswith("time/")} for row in curve]


def test_resume_after_a_crash_continues_the_same_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = TrainConfig(total_steps=1_200, log_interval=200, checkpoint_interval=480, progress=False)
    straight, _ = _crashing_model()
    expected = train_sb3_dqn(straight, config, tmp_path / "straight")
    crashing, _ = _crashing_model()
    monkeypatch.setattr(CrashingVectorEnv, "crash_at", 700)
    with pytest.raises(Crash):
        train_sb3_dqn(crashing, config, tmp_path / "crashed")
    monkeypatch.undo()
    fresh = batched_discrete_env(one_item_vector_env(num_envs=8))  # the checkpoint's users replace its own
    resumed, curve = load_sb3_checkpoint(tmp_path / "crashed" / "checkpoint.pt", fresh)
    assert resumed.num_timesteps == 480
    result = train_sb3_dqn(resumed, config, tmp_path / "crashed", curve)
    assert result.steps == 1_200
    assert _without_timing(result.curve) == _without_timing(expected.curve)
    for p, q in zip(straight.policy.state_dict().values(), resumed.policy.state_dict().values()):
        assert torch.equal(p, q)


def _differing(before: dict[str, Any], after: dict[str, Any], skip: tuple[str, ...] = ()) -> list[str]:
    """Names whose data values (numbers, strings, arrays, dicts of arrays, deques) differ; objects are skipped."""
    differ = []
    for name, value in before.items():
        other = after.get(name)
        if name in skip:
            continue
        if isinstance(value, dict) and all(isinstance(item, np.ndarray) for item in value.values()):
            same = isinstance(other, dict) and value.keys() == other.keys() and all(
                np.array_equal(value[key], other[key]) and value[key].dtype == other[key].dtype for key in value)
        elif isinstance(value, np.ndarray):
            same = isinstance(other, np.ndarray) and value.dtype == other.dtype and np.array_equal(value, other)
        elif value is None or isinstance(value, (bool, int, float, str, deque)):
            same = type(value) is type(other) and value == other
        else:
            continue
        if not same:
            differ.append(name)
    return differ


def test_a_checkpoint_rebuilds_the_model_exactly_and_unpickles_nothing(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import pickle

    import cloudpickle
    from stable_baselines3 import DQN

    model = _model(seed=3)
    train_sb3_dqn(model, QUIET, out_dir=tmp_path)
    rng = (torch.get_rng_state(), np.random.get_state()[1].copy(), model.action_space.np_random.bit_generator.state)

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("loading an SB3 DQN checkpoint unpickled something")

    for owner, name in ((pickle, "load"), (pickle, "loads"), (cloudpickle, "loads"), (DQN, "load"),
                        (DQN, "load_replay_buffer")):
        monkeypatch.setattr(owner, name, refuse)
    loaded, _ = load_sb3_checkpoint(tmp_path / "checkpoint.pt", batched_discrete_env(one_item_vector_env(8)))
    monkeypatch.undo()
    # Counters, _last_obs, epsilon; the logger is train_sb3_dqn's per run (set again on a resumed model).
    assert _differing(model.__dict__, loaded.__dict__, skip=("start_time", "_custom_logger")) == []
    assert _differing(model.replay_buffer.__dict__, loaded.replay_buffer.__dict__) == []  # arrays, pos, full
    assert model.replay_buffer.pos > 0 and loaded._n_calls == model._n_calls > 0
    for key, tensor in model.policy.state_dict().items():  # online and target networks
        assert torch.equal(tensor, loaded.policy.state_dict()[key]), key
    saved_optimizer, loaded_optimizer = model.policy.optimizer.state_dict(), loaded.policy.optimizer.state_dict()
    assert saved_optimizer["param_groups"] == loaded_optimizer["param_groups"]
    for index, moments in saved_optimizer["state"].items():
        for key, tensor in moments.items():
            assert torch.equal(tensor, loaded_optimizer["state"][index][key]), (index, key)
    assert torch.equal(torch.get_rng_state(), rng[0]) and np.array_equal(np.random.get_state()[1], rng[1])
    assert loaded.action_space.np_random.bit_generator.state == rng[2]


def test_the_checkpoint_keeps_every_dqn_constructor_argument() -> None:
    # An SB3 release that adds an argument must add it to what a checkpoint keeps (or say why not).
    import inspect

    from stable_baselines3 import DQN

    from agents.sb3_dqn import _DQN_ARGUMENTS

    kept_apart = {"self", "policy", "env", "policy_kwargs", "device", "_init_setup_model", "replay_buffer_class",
                  "train_freq", "stats_window_size", "tensorboard_log"}  # a path the file must not choose
    assert set(inspect.signature(DQN.__init__).parameters) - kept_apart == set(_DQN_ARGUMENTS)


def test_what_a_checkpoint_cannot_keep_or_resume_into_is_a_config_error(tmp_path: Path) -> None:
    from stable_baselines3 import DQN

    from agents.sb3_dqn import save_sb3_checkpoint

    env = batched_discrete_env(one_item_vector_env(num_envs=8))
    with pytest.raises(ConfigError, match="models built by agents.sb3_dqn.make_sb3_dqn"):
        save_sb3_checkpoint(tmp_path / "other.pt", DQN("MultiInputPolicy", env, learning_starts=10), [])
    save_sb3_checkpoint(tmp_path / "checkpoint.pt", _model(), [])
    with pytest.raises(ConfigError, match="trained on 8 parallel envs.*num_envs=8, not 4"):
        load_sb3_checkpoint(tmp_path / "checkpoint.pt", batched_discrete_env(one_item_vector_env(num_envs=4)))


def test_q_fill_shows_the_models_own_next_picks_and_survives_a_resume(tmp_path: Path) -> None:
    view = batched_discrete_env(one_item_vector_env(num_envs=8), fill="q")
    model = make_sb3_dqn(view, seed=0, embedding_dim=8, hidden=16, learning_starts=50, batch_size=32)
    obs = view.reset()
    q = SB3SlatePolicy(model, view.slate_size).q_values(obs)
    np.testing.assert_allclose(view.scorer(obs), q)  # the online network's Q of the observation
    sent = []
    view.venv.step_async = sent.append  # catch the slate the view builds
    view.step_async(np.zeros(8, dtype=np.int64))
    order = np.argsort(-np.where(np.arange(q.shape[1]) == 0, np.inf, q), axis=1, kind="stable")
    np.testing.assert_array_equal(sent[0], order[:, : view.slate_size])  # slot 0 the action, then top-Q
    del view.venv.step_async
    train_sb3_dqn(model, QUIET, out_dir=tmp_path)
    fresh = batched_discrete_env(one_item_vector_env(8))  # popularity by default
    loaded, _ = load_sb3_checkpoint(tmp_path / "checkpoint.pt", fresh)
    assert fresh.fill == "q" and fresh.scorer.model is loaded
    with pytest.raises(ConfigError, match="fill must be one of"):
        batched_discrete_env(one_item_vector_env(num_envs=8), fill="best")


def test_choice_credit_stores_the_chosen_candidate_with_the_slates_reward() -> None:
    from agents.sb3_dqn import CREDITED_ACTION, CreditReplayBuffer

    view = batched_discrete_env(one_item_vector_env(num_envs=8), fill="cyclic", credit="choice")
    model = make_sb3_dqn(view, seed=0, embedding_dim=8, hidden=16, learning_starts=50, batch_size=32)
    assert type(model.replay_buffer) is CreditReplayBuffer
    obs = view.reset()
    actions = np.arange(8) % 6
    view.step_async(actions)
    _, rewards, _, infos = view.step_wait()
    slates = (actions[:, None] + np.arange(2)) % 6  # the cyclic fill
    choice = np.array([i["choice"] for i in infos])
    assert (choice == 1).any() and (choice == -1).any()  # a click in slot 1, and steps without a click
    np.testing.assert_array_equal(rewards, np.stack([i["click"] for i in infos]).sum(1))  # the slate's reward
    credited = np.where(choice >= 0, slates[np.arange(8), np.maximum(choice, 0)], actions)
    np.testing.assert_array_equal([i[CREDITED_ACTION] for i in infos], credited)
    model.replay_buffer.add(obs, obs, actions.reshape(8, 1), rewards, np.zeros(8), infos)
    np.testing.assert_array_equal(model.replay_buffer.actions[0, :, 0], credited)
    with pytest.raises(ConfigError, match=r"credit must be one of \['slate', 'pick', 'choice'\]"):
        batched_discrete_env(one_item_vector_env(num_envs=8), credit="mine")


def test_n_step_samples_sum_the_rewards_to_the_episodes_end_and_bootstrap_after() -> None:
    from gymnasium import spaces

    from agents.sb3_dqn import CreditReplayBuffer

    space = spaces.Dict({"x": spaces.Box(0, 100, (1,), dtype=np.float32)})
    buffer = CreditReplayBuffer(16, space, spaces.Discrete(3), device="cpu", n_envs=1, n_steps=3, gamma=0.5)
    dones = [0, 0, 0, 1, 0, 0, 0, 0]  # an episode ends at row 3 (terminated); row 7 is the newest
    timeouts = [0, 0, 0, 0, 0, 1, 0, 0]  # row 5 is cut by the step cap: it bootstraps
    for row, (done, timeout) in enumerate(zip(dones, timeouts)):
        obs = {"x": np.array([[row]], dtype=np.float32)}
        buffer.add(obs, {"x": obs["x"] + 0.5}, np.array([[row % 3]]), np.array([row + 1.0]), np.array([done]),
                   [{"TimeLimit.truncated": bool(timeout)}])
    sample = buffer._get_samples(np.array([0, 1, 2, 3, 4, 6, 7]))
    # rewards are row + 1; a sum stops at the first end (done or timeout) or at the newest row.
    expected = [1 + 2 * .5 + 3 * .25, 2 + 3 * .5 + 4 * .25, 3 + 4 * .5, 4, 5 + 6 * .5, 7 + 8 * .5, 8]
    np.testing.assert_allclose(sample.rewards.numpy().ravel(), expected)
    np.testing.assert_allclose(sample.next_observations["x"].numpy().ravel(), [2.5, 3.5, 3.5, 3.5, 5.5, 7.5, 7.5])
    np.testing.assert_allclose(sample.discounts.numpy().ravel(), [.125, .125, .25, .5, .25, .25, .5])
    np.testing.assert_array_equal(sample.dones.numpy().ravel(), [0, 1, 1, 1, 0, 0, 0])  # row 5's timeout bootstraps
    np.testing.assert_array_equal(sample.observations["x"].numpy().ravel(), [0, 1, 2, 3, 4, 6, 7])
    one_step = CreditReplayBuffer(16, space, spaces.Discrete(3), device="cpu", n_envs=1)
    assert one_step._get_samples(np.array([0])).discounts is None  # SB3's own one-step samples


@pytest.mark.parametrize("value", [0, -1, 1.5, "3", True])
def test_n_steps_must_be_a_positive_integer(value: Any) -> None:
    with pytest.raises(ConfigError, match="n_steps must be a positive integer"):
        _model(n_steps=value)


def test_resume_with_n_step_returns_and_choice_credit_continues_the_same_run(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    config = TrainConfig(total_steps=1_200, log_interval=200, checkpoint_interval=480, progress=False)

    def build() -> Any:
        base = one_item_vector_env(num_envs=8)
        vec = CrashingVectorEnv(base.user_model, None, base.config, num_envs=8)
        return make_sb3_dqn(batched_discrete_env(vec, credit="choice"), seed=2, embedding_dim=8, hidden=16,
                            learning_starts=50, batch_size=32, target_update_interval=100, gamma=0.9, n_steps=3)

    expected = train_sb3_dqn(build(), config, tmp_path / "straight")
    monkeypatch.setattr(CrashingVectorEnv, "crash_at", 700)
    with pytest.raises(Crash):
        train_sb3_dqn(build(), config, tmp_path / "crashed")
    monkeypatch.undo()
    fresh = batched_discrete_env(one_item_vector_env(num_envs=8), credit="pick")  # the file's credit wins
    resumed, curve = load_sb3_checkpoint(tmp_path / "crashed" / "checkpoint.pt", fresh)
    assert fresh.credit == "choice" and resumed.replay_buffer.n_steps == 3 and resumed.replay_buffer.gamma == 0.9
    result = train_sb3_dqn(resumed, config, tmp_path / "crashed", curve)
    assert _without_timing(result.curve) == _without_timing(expected.curve)
    straight = load_sb3_checkpoint(tmp_path / "straight" / "checkpoint.pt")[0]
    for p, q in zip(straight.policy.state_dict().values(), resumed.policy.state_dict().values()):
        assert torch.equal(p, q)


def test_the_q_head_is_the_shared_mlp_on_each_candidates_state_and_own_features() -> None:
    model = _model()
    obs, _ = one_item_vector_env(num_envs=4).reset(seed=0)
    obs_t, _ = model.policy.obs_to_tensor(obs)
    extractor, head = model.q_net.features_extractor, model.q_net.q_net
    with torch.no_grad():
        features = extractor(obs_t)
        state, own = features[:, : extractor.state_dim], features[:, extractor.state_dim:].reshape(4, 6, -1)
        repeated = torch.cat([state.unsqueeze(1).expand(-1, 6, -1), own], -1)  # the state once per candidate
        torch.testing.assert_close(head(features), head.net(repeated).squeeze(-1))
