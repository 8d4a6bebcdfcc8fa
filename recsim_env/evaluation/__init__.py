"""Scoring policies: metrics, rollouts with common random numbers, offline protocols, the fidelity report."""

from recsim_env._lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, {
    "evaluate": "recsim_env.evaluation.rollout",
    "EpisodeStats": "recsim_env.evaluation.rollout",
    "metrics": "",
    "SampledRanking": "recsim_env.evaluation.offline",
    "full_ranking": "recsim_env.evaluation.offline",
    "fidelity_report": "recsim_env.evaluation.fidelity",
    "FidelityConfig": "recsim_env.evaluation.fidelity",
    "FidelityReport": "recsim_env.evaluation.fidelity_report",
})
