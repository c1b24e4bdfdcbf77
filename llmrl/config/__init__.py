"""One validated config tree, loaded from ``configs/*.yaml`` plus ``key=value`` overrides.

Every field is documented where it is declared, in ``schema.py`` (after CleanRL). ``loading.py`` reads YAML and
overrides into the tree; ``validation.py`` checks what the types cannot. Errors raise ``ConfigError`` whose
message names the offending key; the CLI prints it on one line and exits with code 2.
"""

from llmrl.config.loading import config_from_dict, load_config, parse_overrides
from llmrl.config.schema import (PROMPT_STYLES, TEACHER_BACKENDS, AdapterConfig, Config, ConfigError, DistillConfig,
                                 EnvConfig, FeedbackConfig, HFConfig, ModelConfig, OpenAIConfig, PPOConfig,
                                 ReplayConfig, ResourcesConfig, RunConfig, TeacherConfig, VLLMConfig)
from llmrl.config.validation import adapter_base_model, analyst_config, teacher_chat_template, validate

__all__ = ["PROMPT_STYLES", "TEACHER_BACKENDS", "AdapterConfig", "Config", "ConfigError", "DistillConfig", "EnvConfig",
           "FeedbackConfig", "HFConfig", "ModelConfig", "OpenAIConfig", "PPOConfig", "ReplayConfig",
           "ResourcesConfig", "RunConfig", "TeacherConfig", "VLLMConfig", "adapter_base_model", "analyst_config",
           "config_from_dict", "load_config", "parse_overrides", "teacher_chat_template", "validate"]
