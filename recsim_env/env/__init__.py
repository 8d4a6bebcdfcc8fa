"""The Gymnasium envs: the batched simulation core, the single and vector envs, their config, candidate
generators, reward functions, wrappers for particular learners, and the registered ids."""

from recsim_env._lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, {
    "EnvConfig": "recsim_env.env.config",
    "observation_space": "recsim_env.env.config",
    "RecEnv": "recsim_env.env.rec_env",
    "make_env": "recsim_env.env.rec_env",
    "RecVectorEnv": "recsim_env.env.vector",
    "merge_final_info": "recsim_env.env.vector",
    "SlateSimulation": "recsim_env.env.simulation",
    "RandomStreams": "recsim_env.env.simulation",
    "WeightedReward": "recsim_env.env.rewards",
    "RewardWeights": "recsim_env.env.rewards",
    "SingleItemDiscrete": "recsim_env.env.wrappers",
    "FlattenRecObservation": "recsim_env.env.wrappers",
    "register_envs": "recsim_env.env.registration",
    "LifetimeEnv": "recsim_env.env.lifetime",
    "LifetimeVectorEnv": "recsim_env.env.lifetime",
    "LifetimeConfig": "recsim_env.env.lifetime",
})
