"""Fine-tuning from a checkpoint (`model.init` naming a local folder), for every task, through
every stage: tokenize takes the checkpoint's tokenizer, pretrain is skipped, and fine-tuning,
compression (int8, a student of half the checkpoint's layers initialised from them, ONNX
Runtime), evaluation, export, the registry and serving all work on it. The BERT goes through
`dvc repro` (what dvc.yaml declares must hold for a checkpoint too); the encoder-decoders run the
same stages in one process, which spares a model import per stage.

The checkpoints are tiny models of the real architectures (BERT; BART, Marian and T5, which
decodes through `generate`), built and saved here with tokenizers trained on builtin data.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tiny import dvc, make_repo_copy, pipeline_env, registry, tiny_params

TEXTS = [f"the {a} {b} was {c} in part {i}" for i, (a, b, c) in enumerate(
    (a, b, c) for a in ("old", "new", "red", "tall", "quiet") for b in ("film", "house", "car", "garden", "city")
    for c in ("good", "bad", "fine", "long", "dull", "bright"))]


def save_checkpoint(kind: str, folder: Path) -> Path:
    """A tiny, randomly initialised model of ``kind`` with a tokenizer, saved as a hub model would be."""
    import transformers as tf

    from pipelines.config import TokenizerConfig
    from pipelines.data.tokenization import BART_SPECIALS, BERT_SPECIALS, train_tokenizer

    family = BERT_SPECIALS if kind == "bert" else BART_SPECIALS
    tok = train_tokenizer(TEXTS * 4, TokenizerConfig(type="wordpiece" if kind == "bert" else "bpe", vocab_size=300,
                                                     min_frequency=1, lowercase=True, max_length=64), family)
    small = {"d_model": 32, "encoder_layers": 2, "decoder_layers": 2, "encoder_attention_heads": 2,
             "decoder_attention_heads": 2, "encoder_ffn_dim": 64, "decoder_ffn_dim": 64, "max_position_embeddings": 128,
             "vocab_size": len(tok), "pad_token_id": tok.pad_token_id, "eos_token_id": tok.eos_token_id}
    if kind == "bert":
        # four layers: the default student takes half of them
        model = tf.BertForMaskedLM(tf.BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=4,
                                                 num_attention_heads=2, intermediate_size=64,
                                                 max_position_embeddings=128, pad_token_id=tok.pad_token_id))
    elif kind == "bart":
        model = tf.BartForConditionalGeneration(tf.BartConfig(**small, bos_token_id=tok.bos_token_id,
                                                              decoder_start_token_id=tok.eos_token_id))
    elif kind == "marian":
        model = tf.MarianMTModel(tf.MarianConfig(**small, decoder_start_token_id=tok.pad_token_id,
                                                 decoder_vocab_size=len(tok)))
    elif kind == "t5":
        model = tf.T5ForConditionalGeneration(tf.T5Config(
            vocab_size=len(tok), d_model=32, d_kv=16, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=2,
            pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, decoder_start_token_id=tok.pad_token_id))
    else:
        raise ValueError(kind)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def _serve_one(root: Path, project: str, text: str, column: str) -> list:
    code = ("import json, mlflow, pandas as pd;"
            f"m = mlflow.pyfunc.load_model('models:/{project}@champion');"
            f"print(json.dumps(m.predict(pd.DataFrame({{{column!r}: [{text!r}]}})).to_dict('records')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=root, env=pipeline_env(root), capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _run_stages(root: Path, params: dict, project: str, monkeypatch) -> None:
    """Every stage of the project, in order, in this process (as `python -m pipelines <stage>` runs each)."""
    import importlib

    import yaml

    from pipelines.stages import STAGES
    from pipelines.config import parse_params

    root.mkdir(parents=True)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    monkeypatch.setenv("PIPELINES_ROOT", str(root))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    monkeypatch.chdir(root)
    validated = parse_params(params)
    for stage in STAGES:
        importlib.import_module(f"pipelines.stages.{stage}").run(validated, project)


CASES = [
    # kind, task, variants that compress makes from the checkpoint, through dvc repro
    ("bert", "classification", {"pruned", "student", "int8", "ort_fp32", "ort_int8"}, True),
    ("bart", "translation", {"student", "int8", "ort_fp32", "ort_int8"}, False),
    ("marian", "translation", {"student", "int8"}, False),
    ("t5", "summarization", {"student", "int8"}, False),
]


@pytest.mark.parametrize("kind, task, variants, through_dvc", CASES, ids=[c[0] for c in CASES])
def test_fine_tuning_a_checkpoint_goes_through_every_stage(tmp_path, monkeypatch, kind, task, variants,
                                                           through_dvc):
    checkpoint = save_checkpoint(kind, tmp_path / f"{kind}-checkpoint")
    params = tiny_params([task], size=200)
    block = params["projects"][task]
    block["model"]["init"] = str(checkpoint)
    block["finetune"].update(epochs=1, learning_rate=1e-3)
    comp = block["compress"]
    comp["distillation"].update(enabled=True, num_layers="half", num_decoder_layers="half", epochs=1)
    comp["pruning"].update(heads=1 if "pruned" in variants else 0, sparsity=0.0, ffn_fraction=0.0)
    comp["quantize"] = ["full"]
    comp["onnx_runtime"] = "ort_fp32" in variants
    block["export"]["onnx"] = "ort_fp32" in variants
    if "num_beams" in block["evaluate"]:
        block["evaluate"]["max_examples"] = 12
    if through_dvc:
        root = make_repo_copy(tmp_path / "repo", params)
        dvc(root, "repro")
    else:
        root = tmp_path / "project"
        _run_stages(root, params, task, monkeypatch)

    reports = root / "reports" / task
    pretrain = json.loads((reports / "pretrain.json").read_text())
    assert pretrain == {"pretrained": False, "init": str(checkpoint)}
    tokenize = json.loads((reports / "tokenize.json").read_text())
    assert tokenize["vocab_size"]["tokenizer"] == len(json.loads((checkpoint / "tokenizer.json").read_text())[
        "model"]["vocab"])
    teacher = json.loads((checkpoint / "config.json").read_text())
    tuned = json.loads((root / "models" / task / "finetuned" / "config.json").read_text())
    assert tuned["model_type"] == teacher["model_type"]
    evaluation = json.loads((reports / "evaluate.json").read_text())
    assert variants | {"full"} <= set(evaluation), sorted(evaluation)
    # the student has half the checkpoint's layers, initialised from them
    student = json.loads((root / "models" / task / "compressed" / "student" / "config.json").read_text())
    layers = {"bert": "num_hidden_layers", "t5": "num_layers"}.get(kind, "encoder_layers")
    assert student[layers] == teacher[layers] // 2
    compress = json.loads((reports / "compress.json").read_text())
    assert compress["variants"]["student"]["init"]["tensors_from_teacher"] > 0, compress["variants"]["student"]

    assert registry(root, task)["aliases"] == {"candidate": 1, "champion": 1}
    column, text = {"classification": ("text", "the new film was good"),
                    "translation": ("source", "the old house was fine"),
                    "summarization": ("document", "the red car was long in part 3. the city was bright.")}[task]
    answer = _serve_one(root, task, text, column)
    assert len(answer) == 1 and answer[0], answer
