"""The LLM teacher: prompts, plan choice and the backends that answer ``TeacherQuery`` batches.

``prompting`` builds the text an LM reads and parses its answers; ``plan_choice`` turns LM scores or samples
into option distributions (shared by every LM backend so they agree); ``backends`` holds the scripted,
transformers, vLLM and OpenAI-compatible backends behind ``make_backend``; ``tiny_lm`` builds a tiny local
Llama for tests and CPU demos. Importing this package imports none of torch, vllm or httpx.
"""
