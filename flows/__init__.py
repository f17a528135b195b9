"""Prefect flows that run the DVC pipeline of a project on a worker's checkout, and retrain on a schedule.

    python -m flows run classification [-S projects.classification.finetune.epochs=2]   # one run, local mode
    python -m flows retrain classification                                     # retrain if anything changed
    python -m flows deploy                                                     # the deployments of prefect.yaml
    python -m flows worker                                                     # a worker in this checkout

``flows.pipeline`` holds the flows (with ``flows.deploy``, ``flows.worker`` and ``flows.gpu_slots``, the
modules that use Prefect);
what they do in the worker's checkout, without Prefect, is one module per job:

    flows/checkout.py     entering the worker's checkout, git pull, which projects it declares, the lock that
                          keeps two flow runs apart
    flows/overrides.py    params overrides (-S): parse, write into params.yaml once validated, put params.yaml back
    flows/dvc_runner.py   the one module that talks to DVC: bring one stage up to date, dvc push
    flows/commands.py     run a command in the checkout with the stages' environment, its output sent to the log
    flows/run_summary.py  the run's summary from the stages' reports, and its markdown artifact
    flows/errors.py       the errors a flow fails with, and which a retry may fix
    flows/lineage.py      has anything changed since the champion was trained (a command, run like a stage)
    flows/deploy.py       the deployments of prefect.yaml, one per project
    flows/worker.py       python -m flows worker: declare the machine's GPU slots, start a Prefect worker
    flows/gpu_slots.py    the machine's GPU slots: a Prefect concurrency limit, one GPU per training run
    flows/sweep.py        a sweep's trials on the pool (sweep --pool gpu): the trial's flow, and the sweep's side

Stages themselves are never re-implemented here: a stage that ``dvc status`` lists as out of date
goes to ``dvc repro --single-item <stage>@<project>``, which runs ``python -m pipelines <stage> <project>``.
"""
