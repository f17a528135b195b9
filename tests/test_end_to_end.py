"""`dvc repro` of a project on a tiny config, in a throw-away copy of the repository, offline."""

from __future__ import annotations

import json

import pytest

from tests.tiny import dvc, int8_only, make_repo_copy, mlflow_json, registry, run_stages, tiny_params

STAGES = ("ingest", "clean", "split", "tokenize", "pretrain", "finetune", "compress", "evaluate", "export")


def test_repro_writes_metrics_plots_and_export(classification_repo):
    root = classification_repo
    metrics = json.loads((root / "reports/classification/evaluate.json").read_text())
    for variant in ("full", "int8"):
        assert 0.0 <= metrics[variant]["accuracy"] <= 1.0
        assert 0.0 <= metrics[variant]["macro_f1"] <= 1.0
    assert metrics["examples"] > 0
    # every score of every variant with its 95 % interval, each variant's change from the full model
    # tested on the same examples, and the majority class scored beside them
    for variant in metrics["intervals"]:
        for name, found in metrics["intervals"][variant].items():
            assert found["low"] <= metrics[variant][name] <= found["high"], (variant, name)
    assert set(metrics["intervals"]) >= {"full", "int8", "pruned", "student", "ort_int8"}
    change = metrics["changes"]["int8"]
    assert change["difference"] == pytest.approx(metrics["int8_change"]) and change["p_value"] is not None
    baseline = metrics["baseline"]
    assert baseline["name"].startswith("majority class") and set(baseline["comparisons"]) == set(metrics["intervals"])
    shown = json.loads(dvc(root, "metrics", "show", "--json").stdout)
    files = next(iter(shown.values()))["data"]
    assert "reports/classification/evaluate.json" in files
    shown_full = files["reports/classification/evaluate.json"]["data"]["intervals"]["full"]["accuracy"]
    assert shown_full["low"] <= metrics["full"]["accuracy"] <= shown_full["high"]
    assert (root / "plots/classification/evaluate.csv").read_text().startswith("actual,predicted")
    export = root / "models/classification/export"
    assert {p.relative_to(export).as_posix() for p in export.rglob("*") if p.is_file()} >= {
        "export.json", "model.onnx", "hf/config.json", "hf/model.safetensors", "hf/tokenizer.json",
        "hf/tokenizer_config.json"}
    report = json.loads((root / "reports/classification/export.json").read_text())
    assert report["onnx_max_abs_diff"] < 1e-4
    # the full model's graph is the one compress exported and checked (ort_fp32), not exported twice
    assert report["onnx_reused"] is True
    compressed = root / "models/classification/compressed/ort_fp32/model.onnx"
    assert (export / "model.onnx").read_bytes() == compressed.read_bytes()
    compress = json.loads((root / "reports/classification/compress.json").read_text())
    assert compress["linear_weight_ratio"] > 3.5
    # each speed-up with its interval over the calls the models made in turns; the raw times stay out
    low, high = compress["variants"]["int8"]["speedup_batch1_ci95"]
    assert low <= high and compress["variants"]["int8"]["speedup_measurable"] == (not low <= 1.0 <= high)
    assert "samples_ms" not in (root / "reports/classification/compress.json").read_text()


def test_registry_has_candidate_and_champion(classification_repo):
    reg = registry(classification_repo, "classification")
    assert reg["versions"] == [1]
    assert reg["aliases"] == {"candidate": 1, "champion": 1}
    tags = reg["tags"]["1"]
    assert tags["metric_name"] == "accuracy" and "test_data_hash" in tags and "data.raw.sha256" in tags


def test_export_writes_a_model_card_and_the_data_profile(classification_repo):
    root = classification_repo
    export = root / "models/classification/export"
    card = (export / "README.md").read_text()
    info = json.loads((export / "export.json").read_text())
    variants = json.loads((root / "reports/classification/variants.json").read_text())["variants"]
    assert card.startswith("# classification: classification model")
    assert f"test split hash: `{info['test_data_hash']}`" in card
    for name in variants:
        assert f"| {name}" in card
    assert "| finetune.learning_rate |" in card and "## Intended use and limits" in card
    profile = json.loads((export / "data_profile.json").read_text())
    split = json.loads((root / "reports/classification/split.json").read_text())
    assert profile["rows"] == split["rows"] and profile["tokenizer_trained_here"] is True
    assert (export / "data_rows.txt.gz").exists()
    # The first export had no champion to compare the data with.
    change = json.loads((root / "reports/classification/data_change.json").read_text())
    assert change in ({"champion_version": None, "note": "no champion to compare with", "flags": []},
                      {**change, "champion_version": 1})


def test_mlflow_run_holds_params_curves_metrics_and_lineage(classification_repo):
    root = classification_repo
    run_id = json.loads((root / "reports/classification/finetune.json").read_text())["mlflow_run_id"]
    run = mlflow_json(root, (
        f"r = c.get_run({run_id!r});"
        f"arts = [a.path for a in c.list_artifacts({run_id!r}, 'evaluate')];"
        f"hist = c.get_metric_history({run_id!r}, 'validation/accuracy');"
        "print(json.dumps({'params': r.data.params, 'metrics': r.data.metrics, 'tags': r.data.tags,"
        " 'arts': arts, 'curve': len(hist)}))"))
    assert run["params"]["finetune.learning_rate"] and run["params"]["seed"] == "42"
    assert "test/accuracy" in run["metrics"] and "variant/int8.accuracy" in run["metrics"]
    assert "train/loss" in run["metrics"] and any(k.startswith("per_class/precision.") for k in run["metrics"])
    assert run["curve"] >= 1
    assert {"evaluate/confusion_matrix.png", "evaluate/sample_predictions.json"} <= set(run["arts"])
    assert len(run["tags"]["git.commit"]) == 40
    assert any(k.startswith("dvc.data/classification/splits") for k in run["tags"])


def test_second_repro_does_nothing(classification_repo):
    again = dvc(classification_repo, "repro")
    for stage in STAGES[1:]:
        assert f"'{stage}@classification' didn't change" in again.stdout, again.stdout
    assert registry(classification_repo, "classification")["versions"] == [1]


def test_an_experiment_reruns_only_downstream_and_a_reverted_param_is_restored_from_the_run_cache(
        classification_repo):
    """What a user does after `make run`: status is clean, an experiment runs only the stages its
    param reaches, exp show / metrics diff / params diff / plots diff compare real values, and putting
    the param back restores the earlier outputs from DVC's run cache instead of training again."""
    import subprocess

    root = classification_repo
    # ingest is always_changed (a local file or hub data set may change without a tracked dependency
    # changing); nothing else may be stale, bytecode written beside the code included.
    up_to_date = {"ingest@classification": ["always changed"]}
    status = json.loads(dvc(root, "status", "--json").stdout)
    assert status == up_to_date, status
    for cmd in (["git", "config", "user.name", "t"], ["git", "config", "user.email", "t@t"], ["git", "add", "-A"],
                ["git", "commit", "-qm", "after make run"]):
        subprocess.run(cmd, cwd=root, check=True, capture_output=True)
    versions = registry(root, "classification")["versions"]
    champion = registry(root, "classification")["aliases"]["champion"]

    ran = dvc(root, "exp", "run", "-S", "projects.classification.finetune.epochs=2").stdout
    for stage in ("clean", "split", "tokenize", "pretrain"):
        assert f"'{stage}@classification' didn't change" in ran, ran
    for stage in ("finetune", "compress", "evaluate", "export"):
        assert f"Running stage '{stage}@classification'" in ran, ran
    # the experiment registered a version, which says which experiment made it, and champion stayed
    after = registry(root, "classification")
    made = str(max(after["versions"]))
    assert after["aliases"]["champion"] == champion and after["aliases"]["candidate"] == int(made), after
    assert after["tags"][made].get("experiment") and after["tags"][made]["decision"] == "kept", after["tags"][made]
    shown = json.loads(dvc(root, "exp", "show", "--json").stdout)

    def accuracy(entry):
        metrics = entry["data"]["metrics"]["reports/classification/evaluate.json"]["data"]
        return metrics["full"]["accuracy"]

    main = next(e for e in shown if e["rev"] not in ("workspace",))
    assert 0.0 <= accuracy(main) <= 1.0, main
    experiments = [x["revs"][0] for x in main.get("experiments") or []]
    assert experiments and 0.0 <= accuracy(experiments[0]) <= 1.0, main
    assert experiments[0]["data"]["params"]["params.yaml"]["data"]["projects"]["classification"]["finetune"]["epochs"] == 2
    metrics_diff = json.loads(dvc(root, "metrics", "diff", "--all", "--json").stdout)
    assert "full.accuracy" in metrics_diff["reports/classification/evaluate.json"], metrics_diff
    params_diff = json.loads(dvc(root, "params", "diff", "--json").stdout)
    change = params_diff["params.yaml"]["projects.classification.finetune.epochs"]
    assert (change["old"], change["new"]) == (1, 2), params_diff
    plots = dvc(root, "plots", "diff", "--json").stdout
    assert "plots/classification/finetune_loss.csv" in plots and '"loss"' in plots, plots[:2000]

    subprocess.run(["git", "checkout", "--", "params.yaml"], cwd=root, check=True)
    back = dvc(root, "repro")
    for stage in ("finetune", "compress", "evaluate", "export"):
        assert f"Stage '{stage}@classification' is cached - skipping run" in back.stdout, back.stdout
    assert "Running stage 'finetune@classification'" not in back.stdout
    assert json.loads(dvc(root, "status", "--json").stdout) == up_to_date
    # the export was restored, not run again: no new registered version
    assert registry(root, "classification")["versions"] == versions + [max(versions) + 1]


def test_decoding_settings_are_declared_where_they_are_saved_or_used(repo):
    """Changing evaluate.num_beams must re-run every stage that decodes or saves decoding settings
    (tests/test_dvc_declarations.py proves what each stage reads); fine-tuning reads none of them."""
    import yaml

    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    reading = {name for name, stage in stages.items()
               if {"configs/${key}/evaluate.json", "configs/${key}/project.json"} & set(stage["do"]["deps"])}
    assert reading == {"compress", "evaluate", "export"}, reading


def test_sst2_subset_through_local_path_source(tmp_path, shared_data):
    src = tmp_path / "sst2"
    src.mkdir()
    for split, n in (("train", 400), ("validation", 60), ("test", 80)):
        lines = (shared_data / "classification/sst2" / f"{split}.jsonl").read_text().splitlines()[:n]
        (src / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    params = tiny_params(["classification"], classification__data__source=str(src))
    params["tracking"]["register_model"] = False
    root = make_repo_copy(tmp_path / "repo", int8_only(params))
    run_stages(root, until="evaluate")
    split = json.loads((root / "reports/classification/split.json").read_text())
    clean = json.loads((root / "reports/classification/clean.json").read_text())
    # given splits are kept; clean only removes duplicates (keeping the test copy)
    assert split["rows"]["test"] + clean["dropped"].get("duplicate_exact", 0) + clean["dropped"].get(
        "duplicate_normalized", 0) >= 80
    assert split["rows"]["validation"] <= 60 and split["labels"]["train"].keys() == {"0", "1"}
    metrics = json.loads((root / "reports/classification/evaluate.json").read_text())
    assert 0.0 <= metrics["full"]["accuracy"] <= 1.0
