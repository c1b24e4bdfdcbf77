"""Every RLlib import of llmrl lives in this sub-package, because RLlib's APIs move between releases.

RLlib is extended only at its documented points: an RLModule (``module``), a PPO Learner subclass
(``learner``), an env-to-module ConnectorV2 (``connectors``) and callbacks (``callbacks``); ``algo`` builds the
``PPOConfig`` from an llmrl ``Config``.
"""
