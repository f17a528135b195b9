"""End-to-end NLP project pipelines: classification, translation and summarization.

Each DVC stage is a module in :mod:`pipelines.stages` with one entry ``run(params, project)``;
what differs between tasks lives in :mod:`pipelines.tasks`.
"""

__version__ = "0.1.0"
