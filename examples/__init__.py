"""Worked examples of using llmrl with your own code (see docs/custom_env.md)."""
