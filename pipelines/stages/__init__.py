"""One module per DVC stage, each with one entry point ``run(params, project)``.

``STAGES`` is the pipeline's order, the one list that the command line, the flows and the tests read.
"""

STAGES = ("configure", "ingest", "clean", "split", "tokenize", "pretrain", "finetune", "compress", "evaluate", "export")
# The stages that train, on PIPELINES_NUM_PROCESSES processes (pipelines.training.distributed).
TRAINING_STAGES = ("pretrain", "finetune")
