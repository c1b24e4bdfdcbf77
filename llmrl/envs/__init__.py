"""Environment families. Each family is a sub-package with an adapter implementing ``llmrl.core.Guidable``.

Use ``llmrl.envs.registry`` to build one from config; it imports a family only when it is asked for.
"""
