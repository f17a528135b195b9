"""The demo page: every project of params.yaml in one web app, to try its model and read its results.

    python -m pipelines demo [PROJECT ...] [--model DIR_OR_URI] [--host 127.0.0.1] [--port 7860]

Each project gets a tab. "Try it" serves the project's ``champion`` from the MLflow registry (else
its export folder, or ``--model``) and every variant compress made, loaded once at start; each
request goes through the task's ``predict_texts``, as ``predict`` and the served model do:

- a classifier shows every label's probability as bars, and which words moved the prediction most
  (occlusion: each word left out in turn, the drop in the predicted label's probability);
- a translation or summarization model shows the input and the output side by side, the words of
  the output copied from the input, the output's length against the input's, the decoding settings
  (the project's evaluate settings by default), and with a reference its sentence scores (BLEU and
  chrF, or ROUGE).

"Results" shows what the stages wrote, read from reports/ and plots/, nothing recomputed: every
variant's test metric and latency, the confusion matrix of a classifier, the test examples the model
got most wrong, and the training curves. The page loads nothing from the internet.
"""

from __future__ import annotations

import csv
import heapq
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from pipelines.core.errors import PipelineError
from pipelines.core.io import read_json_if_present
from pipelines.core.paths import ProjectPaths
from pipelines.core.inputs import BadRequest
from pipelines.serving.pyfunc import TextModel, with_decoding
from pipelines.compression.variants import chain_order

logger = logging.getLogger(__name__)

EXPORTED = "exported"  # the variant name of the served model itself in the page's variant choice
# Occlusion runs the model once per word: texts longer than this are attributed on their first words.
OCCLUSION_WORDS = 64
# The shortest run of words counted as copied from the input (one word is often a coincidence).
COPIED_MIN_WORDS = 2
WORST_EXAMPLES = 10
EXAMPLES = 5


class DemoError(PipelineError):
    """What the page shows instead of a result: the message says what to do."""

    exit_code = 2


@dataclass
class Served:
    """One project's models as the page serves them."""

    project: str
    task: Any  # TaskSpec
    cfg: Any  # the project's settings as the served model carries them
    impl: Any
    tokenizers: dict
    source: str  # where the served model came from, for the page
    max_chars: int
    variants: dict[str, tuple[Any, str]] = field(default_factory=dict)  # name -> (model, device)

    @property
    def generates(self) -> bool:
        return self.impl.generates_text


# --------------------------------------------------------------------------- loading
def _champion(params, project: str) -> tuple[TextModel, str] | None:
    """The registry's champion as the served TextModel, or None when the registry has none."""
    from pipelines.tracking import registry, runs as tracking

    name = tracking.registered_name(params, project)
    try:
        found = registry.version_info(name, "champion")
    except Exception as exc:  # an unreachable tracking server: the export folder still serves
        logger.warning("registry not readable (%s); serving %s from its export folder", exc, project)
        return None
    if found is None:
        return None
    try:
        inner = tracking.load_pyfunc(f"models:/{name}@champion").unwrap_python_model()
    except Exception as exc:
        logger.warning("champion of %s (version %s) did not load (%s); serving its export folder instead",
                       name, found["version"], exc)
        return None
    if not isinstance(inner, TextModel):
        return None
    return inner, f"registry: {name} version {found['version']} (champion)"


def load_served(params, project: str, model: str | None = None) -> Served:
    """The project's model: ``model`` (an export folder or a models:/ / runs:/ URI), else the
    registry's champion, else models/<project>/export. DemoError names the command that makes one."""
    from pipelines.tasks import get_task
    from pipelines.data.tokenization import load_tokenizers
    from pipelines.compression.variants import load_variant, manifest

    paths = ProjectPaths.of(project)
    cfg = params.project(project)
    found: tuple[TextModel, str] | None = None
    if model is not None:
        if "://" in model or model.startswith(("models:/", "runs:/")):
            from pipelines.tracking import runs as tracking

            inner = tracking.load_pyfunc(model).unwrap_python_model()
            if not isinstance(inner, TextModel):
                raise DemoError(f"--model {model!r} is not a model this pipeline exported")
            found = inner, model
        elif not (Path(model) / "export.json").is_file():
            raise DemoError(f"--model {model!r}: not an export folder (no export.json inside); run `dvc repro "
                            f"export@{project}` first, or give a registered model such as models:/{project}@champion")
        else:
            found = TextModel.from_export(Path(model)), f"export folder {model}"
    if found is None:
        found = _champion(params, project)
    if found is None and (paths.export / "export.json").is_file():
        found = TextModel.from_export(paths.export), f"export folder {paths.export.relative_to(paths.root)}"
    if found is None:
        raise DemoError(f"project {project!r} has no trained model yet: run `dvc repro export@{project}` "
                        "(or `make run` for every project), then start the demo again")
    tm, source = found
    if tm.task != cfg.task:
        raise DemoError(f"the model for {project!r} ({source}) is a {tm.task} model, but the project is "
                        f"{cfg.task}; give a {cfg.task} model")
    served = Served(project, get_task(tm.task), tm.cfg, tm.impl, tm.tokenizers, source, tm.max_chars,
                    {EXPORTED: (tm.model, "cpu")})
    # The variants compress made, when this checkout has them (a machine that only serves may not).
    if model is None and paths.manifest.is_file() and paths.tokenizer.is_dir():
        tokenizers = load_tokenizers(paths.tokenizer)
        for name, entry in manifest(paths).items():
            try:
                served.variants[name] = load_variant(entry, paths, served.impl, tokenizers, served.cfg, "cpu")
            except Exception as exc:  # a variant whose files are gone: the others still serve
                logger.warning("variant %s of %s did not load: %s", name, project, exc)
    return served


# --------------------------------------------------------------------------- requests
def _check(served: Served, text: str) -> tuple[str, str]:
    """The text if the model takes it (DemoError otherwise), and a note when it is cut."""
    try:
        (text,) = served.impl.validate_inputs([text], served.cfg)
    except BadRequest as exc:
        reason = getattr(exc, "reason", str(exc))
        raise DemoError(f"the text {reason}") from None
    tok = served.tokenizers["tokenizer"]
    n = len(tok(text, add_special_tokens=True)["input_ids"])
    limit = served.cfg.tokenizer.max_length
    note = (f"The text is {n} tokens long; the model reads the first {limit}, the rest was ignored."
            if n > limit else "")
    return text, note


def _variant(served: Served, name: str | None) -> tuple[Any, str]:
    name = name or EXPORTED
    if name not in served.variants:
        raise DemoError(f"unknown variant {name!r}; this project has {', '.join(served.variants)}")
    return served.variants[name]


def _timed_predict(served: Served, model, device: str, texts: list[str], cfg) -> tuple[list[dict], float]:
    start = time.perf_counter()
    out = served.impl.predict_texts(model, served.tokenizers, texts, cfg, device)
    return out, (time.perf_counter() - start) * 1000


def classify(served: Served, text: str, variant: str | None = None) -> dict:
    """Label, every label's probability (highest first), each word's effect and the latency."""
    text, note = _check(served, text)
    model, device = _variant(served, variant)
    (pred,), ms = _timed_predict(served, model, device, [text], served.cfg)
    return {"label": pred["label"], "probabilities": pred["probabilities"], "latency_ms": ms, "note": note,
            "words": occlusion(served, model, device, text, pred["label"])}


def occlusion(served: Served, model, device: str, text: str, label: str) -> list[tuple[str, float]]:
    """Each word with the drop in ``label``'s probability when it is left out (positive: it
    supported the label), for the first OCCLUSION_WORDS words; later words get 0."""
    words = text.split()
    if len(words) < 2:
        return [(w, 0.0) for w in words]
    shown = words[:OCCLUSION_WORDS]
    without = [" ".join(words[:i] + words[i + 1:]) for i in range(len(shown))]
    # The whole text goes in the same batch: its probability is then measured under the same padding.
    preds = served.impl.predict_texts(model, served.tokenizers, [text] + without, served.cfg, device)
    full = preds[0]["probabilities"][label]
    effects = [full - p["probabilities"][label] for p in preds[1:]]
    return [(w, round(e, 4)) for w, e in zip(shown, effects)] + [(w, 0.0) for w in words[len(shown):]]


def decoding_defaults(served: Served) -> dict:
    from pipelines.serving.pyfunc import decoding_params

    return decoding_params(served.cfg)


def generate(served: Served, text: str, variant: str | None = None, reference: str = "", num_beams=None,
             length_penalty=None, max_new_tokens=None) -> dict:
    """The output, the words it copies from the input, its length against the input's, the latency
    and, given a reference, the task's sentence scores."""
    text, note = _check(served, text)
    model, device = _variant(served, variant)
    knobs = {"num_beams": num_beams, "length_penalty": length_penalty, "max_new_tokens": max_new_tokens}
    try:
        cfg = with_decoding(served.cfg, {k: _number(v, k) for k, v in knobs.items() if v is not None}, model)
    except BadRequest as exc:
        raise DemoError(str(exc).removeprefix("params ")) from None
    (pred,), ms = _timed_predict(served, model, device, [text], cfg)
    output = pred[served.task.output_key]
    spans, copied = copied_spans(text, output)
    result = {"output": output, "latency_ms": ms, "note": note, "spans": spans, "copied_share": copied,
              "length_ratio": len(output.split()) / max(1, len(text.split())), "scores": {}}
    if reference and reference.strip():
        result["scores"] = sentence_scores(served, output, reference.strip())
    return result


def _number(value, name: str):
    """A knob's value as the type its setting takes (sliders send floats)."""
    return float(value) if name == "length_penalty" else int(value)


def sentence_scores(served: Served, output: str, reference: str) -> dict:
    """The task's metrics (BLEU and chrF, or ROUGE) of one output against one reference."""
    from pipelines.tasks.seq2seq.model import score

    res = score(served.task.name, [output], [[reference]], served.cfg.tokenizer.lowercase, per_example=True)
    return {k: round(v, 2) for k, v in res["per_example"][0].items()}


def copied_spans(source: str, output: str) -> tuple[list[tuple[str, str | None]], float]:
    """``output`` as (piece, "copied" or None) pieces: runs of at least COPIED_MIN_WORDS words that
    appear in that order in ``source`` (case-insensitive), longest first; and the share of the
    output's words inside such runs."""
    words = output.split()
    src = [w.lower() for w in source.split()]
    low = [w.lower() for w in words]
    longest = max(len(src), 1)
    grams = {tuple(src[i:i + n]) for n in range(COPIED_MIN_WORDS, min(longest, 32) + 1)
             for i in range(len(src) - n + 1)}
    pieces: list[tuple[str, str | None]] = []
    copied = 0
    i = 0
    while i < len(words):
        n = 0
        for m in range(min(32, len(words) - i), COPIED_MIN_WORDS - 1, -1):
            if tuple(low[i:i + m]) in grams:
                n = m
                break
        if n:
            pieces.append((" ".join(words[i:i + n]) + " ", "copied"))
            copied += n
            i += n
        else:
            pieces.append((words[i] + " ", None))
            i += 1
    return pieces, copied / len(words) if words else 0.0


def compare_variants(served: Served, text: str, reference: str = "") -> list[dict]:
    """Every variant on one input: its output, latency and (given a reference) scores."""
    text, _ = _check(served, text)
    rows = []
    for name, (model, device) in served.variants.items():
        (pred,), ms = _timed_predict(served, model, device, [text], served.cfg)
        row = {"variant": name, "output": pred[served.task.output_key], "latency_ms": round(ms, 2)}
        if not served.generates:
            row["score"] = round(pred["score"], 4)
        elif reference and reference.strip():
            row.update(sentence_scores(served, row["output"], reference.strip()))
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- results
def _read_csv(path: Path) -> list[dict]:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    except OSError:
        return []


def _prediction_rows(path: Path) -> Iterator[dict]:
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def results(project: str, root: Path | None = None) -> dict:
    """What the stages wrote about the project: the variant table, the confusion matrix (labels
    only), the worst test examples and the curves. Missing reports give ``missing``, naming the stage."""
    paths = ProjectPaths.of(project, root)
    out: dict[str, Any] = {"missing": []}
    variants = read_json_if_present(paths.report("variants"))
    if variants is None:
        out["missing"].append(f"reports/{project}/variants.json (run `dvc repro evaluate@{project}`)")
        out["primary_metric"], out["variants"] = None, []
    else:
        out["primary_metric"] = variants["primary_metric"]
        out["greater_is_better"] = variants.get("greater_is_better", True)
        out["variants"] = [{"variant": name, **row} for name, row in chain_order(variants["variants"]).items()]
    out["worst"], out["confusion"] = [], None
    if paths.predictions.is_file():
        # Streamed: the worst few are kept, not the file.
        rows = _prediction_rows(paths.predictions)
        # An example's score is in the primary metric's direction: the worst are the lowest, or the
        # highest for a metric where lower is better (ties: the more confident mistake first).
        sign = 1 if out.get("greater_is_better", True) else -1
        out["worst"] = heapq.nsmallest(WORST_EXAMPLES, rows,
                                       key=lambda r: (sign * r["score"], -r.get("confidence", 0.0)))
        if out["worst"] and "probabilities" in out["worst"][0]:
            out["confusion"] = confusion(_prediction_rows(paths.predictions))
    else:
        out["missing"].append(f"reports/{project}/predictions.jsonl (run `dvc repro evaluate@{project}`)")
    out["curves"] = {name: _read_csv(paths.plot(f"{name}.csv"))
                     for name in ("pretrain_loss", "finetune_loss", "finetune_validation")}
    return out


def confusion(rows) -> dict:
    """Counts of (reference, prediction) over prediction rows, with the labels in sorted order."""
    counts: dict[tuple[str, str], int] = {}
    labels: set[str] = set()
    for r in rows:
        key = (str(r["reference"]), str(r["prediction"]))
        counts[key] = counts.get(key, 0) + 1
        labels.update(key)
    order = sorted(labels)
    return {"labels": order, "matrix": [[counts.get((a, p), 0) for p in order] for a in order]}
