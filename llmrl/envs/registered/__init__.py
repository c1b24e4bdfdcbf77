"""The registered family: every ``MiniGrid-*`` and ``BabyAI-*`` gymnasium id, by its id.

Modules: ``family`` (the spec, names from gymnasium's registry), ``mission`` (mission text -> BabyAI
instructions), ``text`` (the generic state text: mission, seen objects with colours, lava, what is carried),
``skills`` (plan steps incl. put-next on the historical map), ``planner`` (admissible plans, scripted teacher),
``adapter`` (``RegisteredTask``: the map and skills of ``llmrl.envs.minigrid``, BabyAIBot for the mission).
"""
