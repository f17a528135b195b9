"""Stage tokenize: train a subword tokenizer on the training split (or take the checkpoint's),
then encode every split to token ids (Arrow, via ``datasets.save_to_disk``).

The module name matches the stage; it is only ever imported as ``pipelines.stages.tokenize``,
so it never shadows the standard library's ``tokenize``.
"""

from __future__ import annotations

import logging

from pipelines.config import Params
from pipelines.core.io import atomic_dir, read_jsonl, write_json
from pipelines.core.paths import ProjectPaths
from pipelines.data import lengths
from pipelines.data.tokenization import save_tokenizers
from pipelines.tasks import get_task

logger = logging.getLogger(__name__)


def run(params: Params, project: str) -> dict:
    cfg = params.project(project)
    task = get_task(cfg.task)
    impl = task.impl()
    paths = ProjectPaths.of(project)
    splits = {s: read_jsonl(paths.splits / f"{s}.jsonl") for s in ("train", "validation", "test")}

    # A tokenizer trained here is built for the longest lengths auto may choose, then told the chosen ones.
    tokenizers = impl.build_tokenizers(splits, lengths.bounded(cfg))
    measured: dict[str, dict[str, list[int]]] = {}
    for split, records in splits.items():
        for key, values in impl.token_lengths(lengths.sample(records), tokenizers, cfg).items():
            measured.setdefault(key, {})[split] = values
    chosen = lengths.resolve(cfg.tokenizer, measured, lengths.model_positions(tokenizers, cfg.model.init))
    for problem in lengths.warnings(chosen, project):
        logger.warning("%s", problem)
    cfg = cfg.model_copy(update={"tokenizer": cfg.tokenizer.model_copy(update=lengths.values(chosen))})
    if cfg.model.from_scratch:
        for name, tok in tokenizers.items():
            tok.model_max_length = cfg.tokenizer.max_length if name == "tokenizer" else cfg.tokenizer.max_target_length
    encoded = impl.encode(splits, tokenizers, cfg)

    with atomic_dir(paths.tokenizer) as tmp:
        save_tokenizers(tokenizers, tmp)
        lengths.write(tmp, chosen)
    with atomic_dir(paths.encoded) as tmp:
        encoded.save_to_disk(str(tmp))
    rows = {s: len(encoded[s]) for s in encoded}
    report = {
        "vocab_size": {name: len(tok) for name, tok in tokenizers.items()},
        "rows": rows,
        "mean_tokens": {s: sum(encoded[s]["length"]) / max(1, n) for s, n in rows.items()},
        "lengths": chosen,
        # Rows whose input was cut (of at most lengths.MEASURED_ROWS measured per split).
        "truncated": {s: entry["rows"] for s, entry in chosen["max_length"]["truncated"].items()},
    }
    write_json(paths.report("tokenize"), report)
    return report
