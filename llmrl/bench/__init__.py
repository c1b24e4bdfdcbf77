"""Benchmarks and the performance model that extrapolates them (``llmrl.bench.scaling_model``)."""
