"""The builtin data of each task (``data.source: builtin``): deterministic generators, one module per
task, each with ``generate(size, seed)``; the task's spec names its generator."""
