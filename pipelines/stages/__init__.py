"""One module per DVC stage, each with one entry point ``run(params, project)``."""
