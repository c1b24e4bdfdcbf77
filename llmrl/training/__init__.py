"""Training: the component graph (``graph``), the loop (``loop``), metrics and checkpoints."""
