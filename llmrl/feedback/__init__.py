"""The RL -> LLM direction: the student's results flow back into the teacher's prompt bank.

``bank.PromptBank`` aggregates episode summaries into per-(state, option) success statistics, exemplars from
successful episodes and "plan P succeeded k/n times" feedback lines, and publishes them as versioned, immutable
``PromptBankSnapshot`` s. ``comprehension.comprehension_score`` is AdaRefiner's comprehension score for Crafter.
``actor.FeedbackService`` wraps a bank for use as a named Ray actor (``actor.start_feedback_actor``).

Importing this package is cheap: it does not import ray. Only ``actor.start_feedback_actor`` does, when called.
"""
