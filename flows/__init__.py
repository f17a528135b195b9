"""Prefect flows that run the DVC pipeline of a project on a worker's checkout, and retrain on a schedule.

    python -m flows run classification [-S projects.classification.finetune.epochs=2]   # one run, local mode
    python -m flows retrain classification                                     # retrain if anything changed
    python -m flows deploy                                                     # the deployments of prefect.yaml

``flows.pipeline`` holds the flows (the only module besides ``flows.deploy`` that imports Prefect);
what they do in the worker's checkout, without Prefect, is one module per job:

    flows/checkout.py     is the folder a checkout, which projects it declares, the lock that keeps two flow runs apart
    flows/overrides.py    params overrides (-S): parse, write into params.yaml once validated, put params.yaml back
    flows/dvc_runner.py   the one module that talks to DVC: bring one stage up to date, dvc push
    flows/commands.py     run a command in the checkout with the stages' environment, its output sent to the log
    flows/run_summary.py  the run's summary from the stages' reports, and its markdown artifact
    flows/errors.py       the errors a flow fails with, and which a retry may fix
    flows/lineage.py      has anything changed since the champion was trained (a command, run like a stage)
    flows/deploy.py       the deployments of prefect.yaml, one per project

Stages themselves are never re-implemented here: a stage that ``dvc status`` lists as out of date
goes to ``dvc repro --single-item <stage>@<project>``, which runs ``python -m pipelines <stage> <project>``.
"""
