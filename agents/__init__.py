"""RL agents that learn slate recommendation policies in the simulator.

- :class:`~agents.slateq.SlateQAgent` — SlateQ (Ie et al. 2019): per-item long-term values, double
  DQN with a target network and replay, slate values decomposed through a learned click model.
- :class:`~agents.reinforce.ReinforceAgent` — REINFORCE with the top-K off-policy correction
  (Chen et al. 2019), on-policy in the simulator or off-policy from logged data.
- :mod:`agents.sb3_dqn` — Stable-Baselines3's DQN through the single-item ``Discrete`` view.

All three train through one loop per family (:func:`agents.training.train` for ours, SB3's own loop
with :class:`agents.sb3_dqn.RecCallback` for DQN), log to TensorBoard, checkpoint atomically and
resume, warm-start from the baselines' embeddings (:mod:`agents.warm_start`), and act as policies
through ``predict(observation, state, episode_start, deterministic)``.
:func:`agents.factory.train_agent` builds and trains any of them by name (``recsim train``).
Stable-Baselines3 is imported only by :mod:`agents.sb3_dqn`.
"""

from agents.factory import AGENTS, build_agent, load_agent, train_agent
from agents.networks import ObservationSpec
from agents.reinforce import ReinforceAgent, ReinforceConfig
from agents.slateq import SlateQAgent, SlateQConfig
from agents.training import TrainConfig, TrainResult, train

__all__ = ["AGENTS", "ObservationSpec", "ReinforceAgent", "ReinforceConfig", "SlateQAgent", "SlateQConfig",
           "TrainConfig", "TrainResult", "build_agent", "load_agent", "train", "train_agent"]
