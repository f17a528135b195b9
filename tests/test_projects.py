"""Projects named by the user: two of one task side by side in one `dvc repro`, each with its own
stages, folders, MLflow experiment and registered model; a project added and one removed by
editing params.yaml alone; and the retraining deployment that follows from each project."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.tiny import dvc, int8_only, make_repo_copy, mlflow_json, registry, tiny_params


def write_topics(path: Path, n: int = 180) -> Path:
    """Three topics, short distinct texts: data of its own, with other labels than the builtin set."""
    words = {"sport": ["match", "goal", "league", "coach", "season", "striker"],
             "weather": ["rain", "storm", "sunny", "forecast", "wind", "frost"],
             "music": ["album", "guitar", "concert", "chorus", "singer", "tour"]}
    rows = []
    for i in range(n):
        topic = list(words)[i % 3]
        w = words[topic]
        rows.append({"body": f"news {i}: the {w[i % 6]} and the {w[(i // 3) % 6]} made headlines", "topic": topic})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_two_projects_of_one_task_run_side_by_side_and_projects_come_and_go(tmp_path):
    topics = write_topics(tmp_path / "topics.jsonl")
    params = int8_only(tiny_params({"sentiment": "classification", "topics": "classification"}, size=160,
                                   topics__data__source=str(topics), topics__data__text_field="body",
                                   topics__data__label_field="topic", sentiment__export__onnx=False,
                                   topics__export__onnx=False))
    root = make_repo_copy(tmp_path / "repo", params)
    dvc(root, "repro")

    # each project has its own folders, reports, labels, experiment and registered model
    for name, labels in (("sentiment", None), ("topics", ["music", "sport", "weather"])):
        assert (root / "models" / name / "export" / "export.json").is_file()
        evaluation = json.loads((root / "reports" / name / "evaluate.json").read_text())
        assert 0.0 <= evaluation["full"]["accuracy"] <= 1.0
        config = json.loads((root / "configs" / name / "project.json").read_text())
        assert config["name"] == name and config["task"] == "classification"
        assert registry(root, name)["aliases"] == {"candidate": 1, "champion": 1}
        if labels:
            config = json.loads((root / "models" / name / "export" / "hf" / "config.json").read_text())
            assert sorted(config["id2label"].values()) == labels, config
    experiments = mlflow_json(root, "print(json.dumps(sorted(e.name for e in c.search_experiments())))")
    assert {"nlp-pipelines-sentiment", "nlp-pipelines-topics"} <= set(experiments)
    # the plots of each project are declared with its stages, the test plot with its task's template
    plots = dvc(root, "plots", "show", "--json").stdout
    for name in ("sentiment", "topics"):
        assert f"plots/{name}/evaluate.csv" in plots and f"plots/{name}/finetune_validation.csv" in plots

    # removing a block removes the project from `dvc repro`; the other stays up to date
    raw = yaml.safe_load((root / "params.yaml").read_text())
    del raw["projects"]["topics"]
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    status = json.loads(dvc(root, "status", "--json").stdout)
    assert status == {"ingest@sentiment": ["always changed"]}, status
    listed = dvc(root, "stage", "list").stdout
    assert "@topics" not in listed and "export@sentiment" in listed

    # adding a block adds its stages, nothing else changes
    raw["projects"]["reviews"] = {"task": "classification", "preset": "demo", "data": {"source": "builtin"}}
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    status = json.loads(dvc(root, "status", "--json").stdout)
    assert {s.split("@")[1] for s in status} == {"sentiment", "reviews"}
    assert [s for s in status if s.endswith("@sentiment")] == ["ingest@sentiment"]
    assert "export@reviews" in status


def test_a_deployment_is_made_for_every_project_of_params(tmp_path):
    from flows.deploy import load_deployments

    (tmp_path / "params.yaml").write_text(yaml.safe_dump(
        {"projects": {"sentiment": {"task": "classification"}, "translation": {"task": "translation"}}}))
    repo_prefect = Path(__file__).resolve().parents[1] / "prefect.yaml"
    (tmp_path / "prefect.yaml").write_text(repo_prefect.read_text())
    declared = {d["name"]: d for d in load_deployments(tmp_path)}
    # the template for sentiment; translation's own entry (weekly) in its place; summarization's
    # entry is declared but the project is not in params.yaml (deploy skips it with a warning)
    assert declared["retrain-sentiment"]["parameters"] == {"project": "sentiment"}
    assert declared["retrain-sentiment"]["tags"] == ["retrain", "sentiment"]
    assert declared["retrain-sentiment"]["schedules"][0]["cron"] == "0 2 * * *"
    assert declared["retrain-translation"]["schedules"][0]["cron"] == "0 3 * * 1"
    assert not any("{project}" in name for name in declared)
