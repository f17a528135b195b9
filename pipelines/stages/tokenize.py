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
from pipelines.tasks import get_task
from pipelines.data.tokenization import save_tokenizers

logger = logging.getLogger(__name__)


def run(params: Params, project: str) -> dict:
    cfg = params.project(project)
    task = get_task(cfg.task)
    impl = task.impl()
    paths = ProjectPaths.of(project)
    splits = {s: read_jsonl(paths.splits / f"{s}.jsonl") for s in ("train", "validation", "test")}

    tokenizers = impl.build_tokenizers(splits, cfg)
    encoded = impl.encode(splits, tokenizers, cfg)

    with atomic_dir(paths.tokenizer) as tmp:
        save_tokenizers(tokenizers, tmp)
    with atomic_dir(paths.encoded) as tmp:
        encoded.save_to_disk(str(tmp))
    lengths = {s: encoded[s]["length"] for s in encoded}
    report = {
        "vocab_size": {name: len(tok) for name, tok in tokenizers.items()},
        "rows": {s: len(v) for s, v in lengths.items()},
        "mean_tokens": {s: sum(v) / max(1, len(v)) for s, v in lengths.items()},
        "truncated": {s: sum(1 for x in v if x >= cfg.tokenizer.max_length) for s, v in lengths.items()},
    }
    write_json(paths.report("tokenize"), report)
    return report
