"""The model card export writes beside the model (``README.md`` of the export folder, logged with
the registered model): what it was trained on, the settings that matter, the test metrics and
latency of every variant, the decoding settings, and its intended use and limits. Everything in it
comes from what the stages recorded; nothing is measured again."""

from __future__ import annotations

from typing import Any

from pipelines.tasks import get_task

# The settings a reader of a card asks about first, per block (the rest are in export.json).
KEY_SETTINGS = {
    "model": ("init", "hidden_size", "num_layers", "num_heads", "num_decoder_layers", "dropout"),
    "tokenizer": ("kind", "vocab_size", "max_length", "max_target_length"),
    "pretrain": ("enabled", "epochs", "learning_rate"),
    "finetune": ("epochs", "learning_rate", "batch_size", "weight_decay", "label_smoothing"),
}
DECODING_KEYS = ("num_beams", "length_penalty", "max_new_tokens", "min_new_tokens", "no_repeat_ngram_size")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def _interval(pair) -> str:
    return f"{_fmt(pair[0])} to {_fmt(pair[1])}" if pair else "-"


def render(info: dict, profile: dict, variants: dict[str, dict], source: dict, data_hash: str) -> str:
    """The card as markdown. ``info`` is export.json's content, ``profile`` the data profile,
    ``variants`` the variant table of evaluate, ``source`` ingest's source.json."""
    settings, task, primary = info["settings"], info["task"], info["primary_metric"]
    rows = profile["rows"]
    lines = [
        f"# {info['project']}: {task} model", "",
        f"Registered by the NLP pipeline's export stage; variant **{info['variant']}** "
        f"({info['variant_reason']}). Test {primary}: **{_fmt(info['test_metrics'].get(primary))}**.", "",
        "## Trained on", "",
        f"- source: `{source.get('source', settings['data']['source'])}`"
        + (f"; fixed evaluation set `{source['eval_source']}`" if source.get("eval_source") else ""),
        f"- rows after cleaning: train {rows['train']}, validation {rows['validation']}, test {rows['test']}",
        f"- data hash (data/<project>/raw, sha256): `{data_hash}`",
        f"- test split hash: `{info.get('test_data_hash', '-')}`",
    ]
    if profile.get("labels"):
        lines.append("- labels: " + ", ".join(f"{k} ({v})" for k, v in profile["labels"].items()))
    for field, stats in profile["lengths"].items():
        lines.append(f"- median length of {field}: {_fmt(stats['median'])} characters")
    lines += ["", "## Settings that matter", "", "| setting | value |", "| --- | --- |"]
    for block, keys in KEY_SETTINGS.items():
        for key in keys:
            if key in settings.get(block, {}):
                lines.append(f"| {block}.{key} | {_fmt(settings[block][key])} |")
    for key, entry in (info.get("lengths") or {}).items():
        if entry.get("setting") == "auto":
            limit = f", limited by {entry['limited_by']}" if entry.get("limited_by") else ""
            lines.append(f"- tokenizer.{key} {entry['value']} was derived from the training data: the "
                         f"{_fmt(entry['percentile'])}th percentile of its lengths is {entry['at_percentile']} "
                         f"tokens{limit}; it cuts {entry['truncated']['train']['share']:.1%} of the training examples")
    lines += ["", f"## Test metrics of each variant ({primary} with its 95 % bootstrap interval; the change from "
                  "the full model with its paired interval; CPU latency at batch 1, median)", "",
              f"| variant | {primary} | 95 % CI | change | change 95 % CI | latency ms | size MB |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, row in variants.items():
        size = row.get("size_bytes")
        lines.append(f"| {name}{' (this model)' if name == info['variant'] else ''} | {_fmt(row.get(primary))} | "
                     f"{_interval(row.get(f'{primary}_ci95'))} | {_fmt(row.get('metric_change'))} | "
                     f"{_interval(row.get('metric_change_ci95'))} | {_fmt(row.get('latency_ms'))} | "
                     f"{_fmt(size / 1e6 if size else None)} |")
    decoding = {k: settings.get("evaluate", {}).get(k) for k in DECODING_KEYS if k in settings.get("evaluate", {})}
    if decoding:
        lines += ["", "## Decoding settings", "", ", ".join(f"{k}={_fmt(v)}" for k, v in decoding.items())]
    lines += [
        "", "## Intended use and limits", "",
        f"The model {get_task(task).intended_use}. It knows only what its training "
        "data held: text of another domain, language or register, and labels it never saw, are outside what "
        f"the test figures above describe. Inputs longer than {settings['clean']['max_chars']} characters are "
        f"refused, and the model reads at most {settings['tokenizer'].get('max_length', '-')} tokens of each. "
        "Check the test examples it got wrong (the MLflow run's evaluate/sample_predictions.json) before relying "
        "on it, and re-score it on your own data with `python -m pipelines predict`.",
        "", f"Code: commit `{info.get('git.commit', 'unknown')}`; MLflow run `{info.get('mlflow_run_id')}`.", "",
    ]
    return "\n".join(lines)
