"""params.yaml validation: every problem named with its key and what is allowed, before any work."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest
import yaml

from pipelines.config import ConfigError, load_params, parse_params, resolve_projects
from tests.tiny import REPO


@pytest.fixture
def raw(repo):
    """params.yaml with each project's block resolved over its preset, so every key can be changed."""
    raw = yaml.safe_load((repo / "params.yaml").read_text())
    raw["projects"] = resolve_projects(raw["projects"], [])
    return raw


def problems(raw) -> str:
    with pytest.raises(ConfigError) as exc:
        parse_params(raw)
    return str(exc.value)


def test_repository_params_are_valid(repo):
    params = load_params(repo / "params.yaml")
    assert "classification" in params.projects


def test_misspelt_key_gets_a_suggestion(raw):
    raw["projects"]["classification"]["finetune"]["learnig_rate"] = 0.1
    msg = problems(raw)
    assert "projects.classification.finetune.learnig_rate: unknown key" in msg
    assert "did you mean 'projects.classification.finetune.learning_rate'" in msg


@pytest.mark.parametrize(
    "block, key, value, expected",
    [
        ("finetune", "learning_rate", -1, "greater than 0"),
        ("finetune", "learning_rate", 0, "greater than 0"),
        ("finetune", "batch_size", 0, "greater than 0"),
        ("finetune", "batch_size", "big", "valid integer"),
        ("tokenizer", "type", "sentencepiece", "'wordpiece', 'bpe' or 'unigram'"),
        ("split", "test_fraction", 0.7, "less than 0.5"),
        ("model", "num_heads", 3, "divisible"),
        ("model", "init", "./no/such/folder", "does not exist"),
        ("data", "source", "hf:", "hf:<dataset id>"),
        ("clean", "min_chars", 5000, "must be below clean.max_chars"),
    ],
)
def test_bad_values_name_key_and_rule(raw, block, key, value, expected):
    raw["projects"]["classification"][block][key] = value
    msg = problems(raw)
    assert f"classification.{block}" in msg and expected in msg, msg


def test_all_problems_reported_at_once(raw):
    raw["projects"]["classification"]["finetune"]["learning_rate"] = -1
    raw["projects"]["classification"]["pretrain"]["batch_size"] = 0
    raw["common"]["sed"] = 1
    msg = problems(raw)
    assert "3 problem(s)" in msg
    assert "did you mean 'common.seed'" in msg


def test_a_project_outside_projects_is_named_with_the_fix(raw):
    raw["sentiment"] = raw["projects"].pop("classification")
    msg = problems(raw)
    assert "sentiment: unknown key" in msg and "A project goes under 'projects:'" in msg


def test_keys_of_another_task_are_refused(raw):
    raw["projects"]["classification"]["task"] = "translation"
    msg = problems(raw)
    assert "projects.classification.data.text_field: unknown key" in msg, msg


@pytest.mark.parametrize("name, expected", [
    ("my project", "a project name must start with an ASCII letter or digit"),
    ("a/b", "a project name must start"),
    ("-lead", "a project name must start"),
    ("x" * 65, "at most 64"),
    ("отзывы", "hold only ASCII letters, digits"),
    (1000.0, "YAML reads this project name as a float, not as text, and so does DVC; put the name in quotes"),
    (True, "YAML reads this project name as a bool"),
])
def test_project_names_that_cannot_be_folders_or_stage_keys(raw, name, expected):
    raw["projects"][name] = raw["projects"]["classification"]
    msg = problems(raw)
    assert f"projects.{name}: {expected}" in msg or expected in msg, msg


def test_two_names_that_differ_only_in_case_are_refused(raw):
    raw["projects"]["Classification"] = raw["projects"]["classification"]
    assert "differ only in case" in problems(raw)


@pytest.mark.parametrize("task, expected", [(None, "has no task"), ("regression", "task 'regression' is not one")])
def test_a_project_needs_a_known_task(raw, task, expected):
    block = raw["projects"]["classification"]
    block.pop("task") if task is None else block.update(task=task)
    msg = problems(raw)
    assert f"projects.classification.task: the project {expected}" in msg and "classification, summarization, translation" in msg


def test_unknown_preset_lists_the_task_presets(repo):
    raw = yaml.safe_load((repo / "params.yaml").read_text())
    raw["projects"]["translation"]["preset"] = "large"
    msg = problems(raw)
    assert "projects.translation.preset: 'large' is not a translation preset; choose one of demo, base" in msg


def test_no_projects_is_a_config_error(raw):
    raw["projects"] = {}
    assert "projects is empty" in problems(raw)
    del raw["projects"]
    assert "no projects" in problems(raw)


def test_projects_of_any_name_and_the_same_task(repo):
    raw = yaml.safe_load((repo / "params.yaml").read_text())
    raw["projects"] = {"sentiment": {"task": "classification", "finetune": {"epochs": 2}},
                       "topic_v2": {"task": "classification", "preset": "base", "data": {"label_field": "topic"}}}
    params = parse_params(raw)
    assert list(params.projects) == ["sentiment", "topic_v2"]
    sentiment, topic = params.project("sentiment"), params.project("topic_v2")
    assert sentiment.finetune.epochs == 2 and sentiment.finetune.learning_rate == 0.0005  # the demo preset's
    assert topic.model.hidden_size == 384 and topic.data.label_field == "topic"
    with pytest.raises(ConfigError, match="no project 'sentimen'; did you mean 'sentiment'"):
        params.project("sentimen")


def test_a_preset_is_laid_under_the_block_key_by_key(repo):
    from pipelines.config import load_presets

    presets = load_presets()
    raw = yaml.safe_load((repo / "params.yaml").read_text())
    raw["projects"]["classification"].update(preset="base", model={"num_layers": 2})
    cfg = parse_params(raw).project("classification")
    base = presets["classification"]["base"]
    assert cfg.model.num_layers == 2 and cfg.model.hidden_size == base["model"]["hidden_size"]
    # what base does not list comes from the demo preset
    assert cfg.clean.max_chars == presets["classification"]["demo"]["clean"]["max_chars"]
    assert cfg.compress.pruning.heads == base["compress"]["pruning"]["heads"]


def test_check_lists_each_project_with_its_task_and_preset(tmp_path, repo):
    raw = yaml.safe_load((repo / "params.yaml").read_text())
    raw["projects"]["sentiment"] = {"task": "classification", "preset": "base", "finetune": {"epochs": 1}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    proc = subprocess.run([sys.executable, "-m", "pipelines", "check"], cwd=tmp_path, capture_output=True,
                          text=True, env={"PYTHONPATH": str(repo), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert "sentiment: classification, preset base" in proc.stdout and "translation: translation, preset demo" in \
        proc.stdout


def test_every_preset_is_valid_for_its_task(repo):
    from pipelines.config import load_presets

    for task, presets in load_presets().items():
        for name in presets:
            params = parse_params({"projects": {"p": {"task": task, "preset": name}}})
            assert params.project("p").preset == name


def test_empty_and_malformed_files(tmp_path):
    empty = tmp_path / "params.yaml"
    empty.write_text("")
    with pytest.raises(ConfigError, match="is empty"):
        load_params(empty)
    empty.write_text("classification: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(empty)
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "missing.yaml")


def test_cli_exits_non_zero_before_any_work(raw, tmp_path, repo):
    bad = copy.deepcopy(raw)
    bad["projects"]["classification"]["finetune"]["learning_rate"] = -1
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(bad))
    proc = subprocess.run([sys.executable, "-m", "pipelines", "ingest", "classification", "--params", str(path)],
                          cwd=tmp_path, capture_output=True, text=True, env={"PYTHONPATH": str(repo),
                                                                            "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2
    assert "projects.classification.finetune.learning_rate" in proc.stderr
    assert not (tmp_path / "data").exists()


def test_every_param_dvc_yaml_names_exists_in_params_yaml(repo):
    """DVC refuses to run a stage whose params are missing; catch it here, for every project."""
    dvc = yaml.safe_load((repo / "dvc.yaml").read_text())
    raw = yaml.safe_load((repo / "params.yaml").read_text())
    missing = []
    for name, stage in dvc["stages"].items():
        assert stage["foreach"] == "${projects}", name
        for project in raw["projects"]:
            for key in stage["do"].get("params", []):
                node = raw
                for part in key.replace("${key}", project).split("."):
                    if not isinstance(node, dict) or part not in node:
                        missing.append(f"{name}@{project}: {key}")
                        break
                    node = node[part]
    assert not missing, missing


def test_stage_deps_and_outs_follow_the_paths_module(repo):
    """Every stage's own module is a dependency, so editing a stage re-runs it; every config part a
    stage depends on is one configure writes."""
    from pipelines.stages.configure import PARTS

    dvc = yaml.safe_load((repo / "dvc.yaml").read_text())
    written = {f"configs/${{key}}/{p}.json" for p in PARTS}
    assert set(dvc["stages"]["configure"]["do"]["outs"]) == written
    for name, stage in dvc["stages"].items():
        assert f"pipelines/stages/{name}.py" in stage["do"]["deps"], name
        assert stage["do"]["cmd"] == f"python -m pipelines {name} ${{key}}"
        parts = {d for d in stage["do"]["deps"] if d.startswith("configs/")}
        assert parts <= written, (name, parts - written)
        assert name == "configure" or parts, f"{name} depends on none of the project's settings"


BROKEN = [
    # (what, mutation of the raw params, text the message must contain)
    ("unknown key", lambda r: r["projects"]["classification"]["finetune"].update(lr=0.1), "finetune.lr: unknown key"),
    ("misspelt key", lambda r: r["projects"]["classification"]["finetune"].update(learnig_rate=0.1), "did you mean"),
    ("misspelt block", lambda r: r["projects"]["classification"].update(fine_tune={}), "did you mean 'projects.classification.finetune'"),
    ("wrong type", lambda r: r["projects"]["classification"]["finetune"].update(epochs="three"), "finetune.epochs"),
    ("negative learning rate", lambda r: r["projects"]["classification"]["finetune"].update(learning_rate=-0.1),
     "finetune.learning_rate"),
    ("zero learning rate", lambda r: r["projects"]["classification"]["pretrain"].update(learning_rate=0), "pretrain.learning_rate"),
    ("zero batch size", lambda r: r["projects"]["classification"]["finetune"].update(batch_size=0), "finetune.batch_size"),
    ("negative batch size", lambda r: r["projects"]["classification"]["pretrain"].update(batch_size=-8), "pretrain.batch_size"),
    ("unknown task", lambda r: r["projects"]["classification"].update(task="regression"), "classification.task"),
    ("project outside projects", lambda r: r.update(sentiment={"data": {}}), "sentiment: unknown key"),
    ("unknown data source", lambda r: r["projects"]["classification"]["data"].update(source="ftp://example/data.csv"),
     "neither 'builtin'"),
    ("malformed hub source", lambda r: r["projects"]["classification"]["data"].update(source="hf:a:b:c"), "hf:<dataset id>"),
    ("missing field name", lambda r: r["projects"]["classification"]["data"].update(text_field=""), "data.text_field is empty"),
    ("field name not text", lambda r: r["projects"]["classification"]["data"].update(label_field=None), "data.label_field"),
    ("missing checkpoint folder", lambda r: r["projects"]["classification"]["model"].update(init="./checkpoints/bert"),
     "does not exist"),
    ("heads do not divide width", lambda r: r["projects"]["classification"]["model"].update(num_heads=5), "divisible"),
    ("vocabulary too small", lambda r: r["projects"]["classification"]["tokenizer"].update(vocab_size=10), "vocab_size"),
    ("source check on a classifier",
     lambda r: r["projects"]["classification"]["finetune"].update(min_source_gain=0.05), "finetune.min_source_gain"),
    ("zero minimum frequency", lambda r: r["projects"]["classification"]["tokenizer"].update(min_frequency=0),
     "tokenizer.min_frequency"),
    ("unknown tokenizer type", lambda r: r["projects"]["classification"]["tokenizer"].update(type="char"), "tokenizer.type"),
    ("split fractions out of range", lambda r: r["projects"]["classification"]["split"].update(test_fraction=0.9),
     "split.test_fraction"),
    ("min above max length", lambda r: r["projects"]["classification"]["clean"].update(min_chars=10, max_chars=5), "min_chars"),
    ("unknown precision", lambda r: r["projects"]["classification"]["finetune"].update(precision="fp8"), "finetune.precision"),
    ("unknown device", lambda r: r["runtime"].update(device="tpu"), "runtime.device"),
    ("pre-norm classifier", lambda r: r["projects"]["classification"]["model"].update(layer_norm="pre"), "model.layer_norm"),
    ("pre-norm with two vocabularies",
     lambda r: (r["projects"]["translation"]["model"].update(layer_norm="pre"), r["projects"]["translation"]["tokenizer"].update(
         shared_vocab=False)), "shared_vocab"),
    ("unknown layer norm", lambda r: r["projects"]["summarization"]["model"].update(layer_norm="sandwich"), "model.layer_norm"),
    ("dropout of one", lambda r: r["projects"]["classification"]["model"].update(dropout=1.0), "model.dropout"),
    ("negative seed type", lambda r: r["common"].update(seed="abc"), "common.seed"),
    ("unknown quantization", lambda r: r["projects"]["classification"]["compress"].update(quantization="int4"),
     "compress.quantization"),
    ("negative seed", lambda r: r["common"].update(seed=-1), "common.seed"),
    ("seed above 32 bits", lambda r: r["common"].update(seed=2**40), "common.seed"),
    ("NaN length penalty", lambda r: r["projects"]["translation"]["evaluate"].update(length_penalty=float("nan")),
     "projects.translation.evaluate.length_penalty: Input should be a finite number"),
    ("negative infinite length penalty",
     lambda r: r["projects"]["translation"]["evaluate"].update(length_penalty=float("-inf")), "evaluate.length_penalty"),
    ("infinite learning rate", lambda r: r["projects"]["summarization"]["finetune"].update(learning_rate=float("inf")),
     "projects.summarization.finetune.learning_rate"),
    ("NaN source gain", lambda r: r["projects"]["translation"]["finetune"].update(min_source_gain=float("nan")),
     "projects.translation.finetune.min_source_gain"),
    ("boolean batch size", lambda r: r["projects"]["classification"]["finetune"].update(batch_size=True),
     "projects.classification.finetune.batch_size: a boolean is not allowed"),
    ("boolean dropout", lambda r: r["projects"]["classification"]["model"].update(dropout=False), "model.dropout"),
    ("huge width", lambda r: r["projects"]["classification"]["model"].update(hidden_size=10**7), "model.hidden_size"),
    ("huge depth", lambda r: r["projects"]["classification"]["model"].update(num_layers=10**5), "model.num_layers"),
    ("model too large to pretrain",
     lambda r: r["projects"]["translation"]["model"].update(hidden_size=8192, num_heads=8, num_layers=48, intermediate_size=32768),
     "billion parameters"),
    ("registry name with a slash", lambda r: r["tracking"].update(registered_model_prefix="team/"),
     "tracking.registered_model_prefix 'team/'"),
    ("registry name with a colon", lambda r: r["tracking"].update(registered_model_prefix="a:b"),
     "tracking.registered_model_prefix"),
    ("target field is the source field", lambda r: r["projects"]["translation"]["data"].update(target_field="source"),
     "projects.translation.data.source_field and target_field both name the column 'source'"),
    ("decoding past a derived position table", lambda r: r["projects"]["translation"]["tokenizer"].update(
        max_length="auto", max_target_length="auto") or r["projects"]["translation"]["evaluate"].update(
        max_new_tokens=200),
     "projects.translation.evaluate.max_new_tokens (200) may not fit the position table of the model built here"),
    ("decoding past a fixed position table", lambda r: r["projects"]["translation"]["tokenizer"].update(
        max_length=64, max_target_length=64) or r["projects"]["translation"]["evaluate"].update(max_new_tokens=200),
     "projects.translation.evaluate.max_new_tokens (200) does not fit the model's position table of 72"),
    ("label field is the text field", lambda r: r["projects"]["classification"]["data"].update(label_field="text"),
     "projects.classification.data.text_field and label_field"),
]


@pytest.mark.parametrize("what, mutate, expected", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_params_table(raw, what, mutate, expected):
    mutate(raw)
    msg = problems(raw)
    assert expected in msg, msg


def test_broken_params_stop_the_cli_before_any_output(raw, tmp_path, repo):
    """Through the real CLI: non-zero exit, the key named, nothing written."""
    failures = []
    for what, mutate, expected in BROKEN:
        bad = copy.deepcopy(raw)
        mutate(bad)
        work = tmp_path / what.replace(" ", "_")
        work.mkdir()
        (work / "params.yaml").write_text(yaml.safe_dump(bad))
        proc = subprocess.run([sys.executable, "-m", "pipelines", "ingest", "classification"], cwd=work,
                              capture_output=True, text=True, env={"PYTHONPATH": str(repo), "PATH": "/usr/bin:/bin"})
        written = sorted(p.name for p in work.iterdir() if p.name != "params.yaml")
        if proc.returncode != 2 or expected not in proc.stderr or written:
            failures.append((what, proc.returncode, proc.stderr[-300:], written))
    assert not failures, failures


def test_the_parameter_estimate_is_near_the_real_count(raw):
    """The size bound works on an estimate: it must be near the count of the models built from scratch."""
    from transformers import BartConfig, BartModel, BertConfig, BertModel

    params = parse_params(raw)
    c, t = params.project("classification"), params.project("translation")
    bert = BertModel(BertConfig(vocab_size=c.tokenizer.vocab_size, hidden_size=c.model.hidden_size,
                                num_hidden_layers=c.model.num_layers, num_attention_heads=c.model.num_heads,
                                intermediate_size=c.model.intermediate_size,
                                max_position_embeddings=c.tokenizer.bound("max_length")))
    bart = BartModel(BartConfig(vocab_size=t.tokenizer.vocab_size, d_model=t.model.hidden_size,
                                encoder_layers=t.model.num_layers, decoder_layers=t.model.num_decoder_layers,
                                encoder_ffn_dim=t.model.intermediate_size, decoder_ffn_dim=t.model.intermediate_size,
                                max_position_embeddings=t.tokenizer.bound("max_length") + t.tokenizer.bound("max_target_length")))
    for cfg, model in ((c, bert), (t, bart)):
        real = sum(p.numel() for p in model.parameters())
        assert 0.8 * real <= cfg.estimated_parameters() <= 1.2 * real, (cfg.task, cfg.estimated_parameters(), real)


def test_booleans_still_set_switches(raw):
    raw["projects"]["classification"]["clean"]["strip_html"] = False
    raw["projects"]["classification"]["compress"]["onnx_runtime"] = True
    cfg = parse_params(raw).project("classification")
    assert cfg.clean.strip_html is False and cfg.compress.onnx_runtime is True


def test_params_file_not_utf8_names_the_line_and_the_fix(tmp_path, repo):
    path = tmp_path / "params.yaml"
    text = (repo / "params.yaml").read_text(encoding="utf-8")
    path.write_bytes(("# caf\u00e9 settings\n" + text).encode("latin-1", errors="replace"))
    with pytest.raises(ConfigError, match=r"byte 0xe9 on line 1 is not UTF-8.*save it as UTF-8"):
        load_params(path)
    proc = subprocess.run([sys.executable, "-m", "pipelines", "check", "--params", str(path)], cwd=tmp_path,
                          capture_output=True, text=True, env={"PYTHONPATH": str(repo), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2 and "not UTF-8" in proc.stderr and "Traceback" not in proc.stderr


def test_a_key_written_twice_is_refused_as_dvc_refuses_it(tmp_path, repo):
    path = tmp_path / "params.yaml"
    text = (repo / "params.yaml").read_text(encoding="utf-8")
    path.write_text(text.replace("    task: classification", "    task: classification\n    task: translation", 1))
    assert path.read_text() != text
    with pytest.raises(ConfigError, match="key 'task' appears twice"):
        load_params(path)


@pytest.mark.parametrize("variable, value", [("PIPELINES_NUM_WORKERS", "auto"), ("PIPELINES_LOG_LEVEL", "verbose"),
                                             ("PIPELINES_DEVICE", "tpu"), ("PIPELINES_FLOW_RETRIES", "-1"),
                                             ("PIPELINES_LATENCY_THREADS", "0"), ("PIPELINES_PROGRESS", "maybe")])
def test_environment_settings_are_checked_when_a_command_starts(tmp_path, repo, variable, value):
    proc = subprocess.run([sys.executable, "-m", "pipelines", "ingest", "classification",
                           "--params", str(repo / "params.yaml")], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(repo), "PATH": "/usr/bin:/bin", variable: value})
    assert proc.returncode == 2, proc.stderr
    assert f"{variable}={value!r}" in proc.stderr and "allowed:" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_yaml_anchors_and_merge_keys_still_work(tmp_path):
    """DVC reads merge keys; the duplicate-key check must not refuse them."""
    path = tmp_path / "params.yaml"
    path.write_text("projects:\n  classification:\n    task: classification\n"
                    "    pretrain: &train\n      epochs: 2\n      batch_size: 8\n"
                    "    finetune:\n      <<: *train\n      epochs: 4\n")
    cfg = load_params(path).project("classification")
    assert (cfg.finetune.epochs, cfg.finetune.batch_size, cfg.pretrain.epochs) == (4, 8, 2)


def test_the_params_reference_is_current():
    """docs/params.md is generated from the config models; regenerate it when a setting changes:
    python -m pipelines.config.reference > docs/params.md"""
    from pipelines.config.reference import render

    assert (REPO / "docs" / "params.md").read_text() == render()


def test_every_setting_in_the_params_reference_says_what_it_means():
    """A row with an empty meaning is a setting a user has to read the code for: give its field a
    docstring (the line under it), in pipelines/config/ or the task's package."""
    from pipelines import config
    from pipelines.config.reference import rows

    models = [(config.CommonConfig, "common."), (config.RuntimeConfig, "runtime."),
              (config.TrackingConfig, "tracking.")] + [(m, f"{t}:") for t, m in config.task_classes().items()]
    entries = [row for model, prefix in models for row in rows(model, prefix)]
    assert len(entries) > 300  # every table, not a vacuous check
    assert [key for key, _, _, meaning in entries if not meaning.strip()] == []


def test_an_eval_source_that_is_the_source_itself_is_refused_naming_eval_source(raw, tmp_path):
    data = tmp_path / "reviews.jsonl"
    data.write_text('{"text": "good", "label": "pos"}\n')
    raw["projects"]["classification"]["data"] = {"source": str(data), "eval_source": str(data)}
    msg = problems(raw)
    assert "data.eval_source is data.source" in msg and "separate file of held-out examples" in msg, msg


def test_a_checkpoint_folder_without_weights_or_config_is_named_with_what_it_holds(raw, tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "tokenizer.json").write_text("{}")
    raw["projects"]["classification"]["model"]["init"] = str(tmp_path)
    msg = problems(raw)
    assert "is not a saved model: it has no weights (model.safetensors or pytorch_model.bin)" in msg, msg
    assert "it holds config.json, tokenizer.json" in msg and "save_pretrained()" in msg
    (tmp_path / "config.json").unlink()
    (tmp_path / "model.safetensors").write_text("{}")
    assert "it has no config.json;" in problems(raw)


def test_a_decoder_only_checkpoint_is_refused_before_any_stage_runs(raw, tmp_path):
    config = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_layer": 2}
    (tmp_path / "config.json").write_text(json.dumps(config))
    for name in ("tokenizer.json", "model.safetensors"):
        (tmp_path / name).write_text("{}")
    raw["projects"]["classification"]["model"]["init"] = str(tmp_path)
    msg = problems(raw)
    assert "is a decoder-only (GPT-style) model (GPT2LMHeadModel)" in msg and "model.init: scratch" in msg, msg
    # an encoder-decoder's config names a generation head too, and is what seq2seq projects fine-tune
    config.update(model_type="bart", architectures=["BartForConditionalGeneration"], is_encoder_decoder=True)
    (tmp_path / "config.json").write_text(json.dumps(config))
    raw["projects"]["classification"]["model"]["init"] = "scratch"
    raw["projects"]["translation"]["model"]["init"] = str(tmp_path)
    assert parse_params(raw).projects["translation"].model.init == str(tmp_path)
