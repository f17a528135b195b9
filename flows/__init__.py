"""Prefect flows that run the DVC pipeline of a project on a worker's checkout, and retrain on a schedule.

    python -m flows run classification [-S projects.classification.finetune.epochs=2]   # one run, local mode
    python -m flows retrain classification                                     # retrain if anything changed
    python -m flows deploy                                                     # the deployments of prefect.yaml

``flows.pipeline`` holds the flows (the only module besides ``flows.deploy`` that imports Prefect);
``flows.checkout`` is what they do in the checkout: params overrides, ``dvc repro`` of one stage,
the lock that keeps two flow runs apart. Stages themselves are never re-implemented here: each task
runs ``dvc repro --single-item <stage>@<project>``, which runs ``python -m pipelines <stage> <project>``.
"""
