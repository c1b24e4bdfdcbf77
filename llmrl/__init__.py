"""llmrl: reinforcement-learning students taught by a large language model, on Ray and RLlib.

Importing this package is cheap and side-effect free: it does not import ray, torch.cuda or vllm.
The parts live in sub-packages: ``envs`` (MiniGrid, Crafter), ``teacher`` (service and backends),
``feedback`` (prompt bank), ``rl`` (every RLlib import), ``training`` (the component graph and loop).
"""

from llmrl.config import Config, ConfigError, load_config
from llmrl.messages import Advice, EpisodeSummary, PromptBankSnapshot, TeacherQuery

__version__ = "0.1.0"
__all__ = ["Advice", "Config", "ConfigError", "EpisodeSummary", "PromptBankSnapshot", "TeacherQuery", "load_config"]
