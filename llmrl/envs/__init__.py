"""Environment families. Each family is a sub-package with an adapter implementing ``llmrl.core.Guidable`` and a
light ``family.py`` whose ``SPEC`` (an ``llmrl.core.FamilySpec``) says what llmrl decides for it.

Use ``llmrl.envs.registry`` to find a spec or build a task from config; it imports a family only when it is
asked for. A user's own env needs no sub-package here: ``env.name=package.module:factory``.
"""
