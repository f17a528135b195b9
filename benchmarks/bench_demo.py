"""The demo page: what a request through the page costs on top of the model's own batch-1 latency.

    python -m benchmarks.run demo

The three demo projects at their `demo` preset (builtin data) go through `dvc repro` in a fresh
copy; the demo page then serves them on 127.0.0.1, and each tab's predict endpoint is called through
Gradio's own client: 100 requests one after another, then 100 from 8 threads at once. Reported per
tab: p50 and p95 of the request's wall time at the client, the model's batch-1 median that compress
measured on test inputs (`reports/P/compress.json`), and the difference at p50.

Target: the page adds at most 20 ms at p50 over the model. The same client against a Gradio app
whose endpoint only returns its input (`gradio_echo`) gives the framework's own round trip, so that
the page's own work (input checks, attribution, copied spans) can be told from Gradio's. A classification request also runs the
occlusion attribution (one model call over every word left out in turn, batched), so its overhead
includes that work; the translation and summarization requests decode with the project's own
settings, as compress timed them.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from devsupport.processes import demo_server, free_port

from .common import default_params, run_pipeline, save

logger = logging.getLogger(__name__)

PROJECTS = ("classification", "translation", "summarization")
REQUESTS = 100
THREADS = 8


def _inputs(root: Path, project: str, field: str, n: int) -> list[str]:
    lines = (root / f"data/{project}/splits/test.jsonl").read_text().splitlines()
    return [json.loads(line)[field] for line in lines[:n]]


def _percentiles(ms: list[float]) -> dict:
    return {"p50_ms": round(float(np.percentile(ms, 50)), 2), "p95_ms": round(float(np.percentile(ms, 95)), 2)}


def _echo_floor(client_cls) -> dict:
    """The same client against a Gradio app whose endpoint returns its input: what the framework's
    round trip (queue join, event stream) costs with no work at all."""
    import gradio as gr

    with gr.Blocks() as app:
        box, out = gr.Textbox(), gr.Textbox()
        gr.Button("echo").click(lambda text: text, box, out, api_name="echo")
    port = free_port()
    app.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        client = client_cls(f"http://127.0.0.1:{port}/", verbose=False)
        client.predict("warm", api_name="/echo")
        ms = []
        for _ in range(REQUESTS):
            start = time.perf_counter()
            client.predict("a text", api_name="/echo")
            ms.append((time.perf_counter() - start) * 1000)
        return _percentiles(ms)
    finally:
        app.close()


def main(root: Path | None = None) -> dict:
    """``root``: a copy whose pipeline already ran (its models and reports are used as they are)."""
    from gradio_client import Client

    results: dict = {"requests": REQUESTS, "threads": THREADS}
    if root is None:
        run = run_pipeline(default_params(), list(PROJECTS))
        root = Path(run["root"])
        results["pipeline_wall_seconds"] = round(run["wall_seconds"], 1)
    floor = _echo_floor(Client)
    results["gradio_echo"] = floor
    with demo_server(root) as url:
        client = Client(url, verbose=False)
        fields = {"classification": "text", "translation": "source", "summarization": "document"}
        for project in PROJECTS:
            texts = _inputs(root, project, fields[project], REQUESTS)

            # The project's own decoding settings, as compress timed the model with them.
            ev = json.loads((root / f"configs/{project}/evaluate.json").read_text())["evaluate"]
            knobs = tuple(ev.get(k) for k in ("num_beams", "length_penalty", "max_new_tokens"))

            def call(text: str, c=client, p=project, knobs=knobs) -> float:
                args = (text, "exported") if p == "classification" else (text, "", "exported", *knobs)
                start = time.perf_counter()
                c.predict(*args, api_name=f"/{p}_predict")
                return (time.perf_counter() - start) * 1000

            call(texts[0])  # the first request warms the queue and the model
            sequential = [call(t) for t in texts]
            with ThreadPoolExecutor(THREADS) as pool:
                concurrent = list(pool.map(call, texts))
            compress = json.loads((root / f"reports/{project}/compress.json").read_text())
            model_ms = compress["variants"]["full"]["batch1"]["median_ms"]
            seq = _percentiles(sequential)
            results[project] = {"sequential": seq, "concurrent_8_threads": _percentiles(concurrent),
                                "model_batch1_median_ms": round(model_ms, 2),
                                "page_overhead_p50_ms": round(seq["p50_ms"] - model_ms, 2),
                                "overhead_beyond_gradio_echo_p50_ms": round(seq["p50_ms"] - model_ms - floor["p50_ms"], 2)}
            logger.info("%s: %s", project, results[project])
    save("demo", results)
    return results
