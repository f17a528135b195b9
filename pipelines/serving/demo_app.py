"""The Gradio page of the demo (pipelines/serving/demo.py holds what each request does).

Every request a tab makes is also an API endpoint of the app (``/<project>_predict``,
``/<project>_compare``, ``/<project>_results``), so ``gradio_client`` reaches what the page shows.
A refused input becomes ``gr.Error`` with its message: the page shows it, never a traceback.
"""

from __future__ import annotations

import functools
import logging
from pipelines.serving import demo
from pipelines.core.errors import PipelineError

logger = logging.getLogger(__name__)

# System fonts: the default theme would load its font from a font CDN, which an offline page cannot reach.
FONTS = ["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica", "Arial", "sans-serif"]
MONO = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]


def theme():
    import gradio as gr

    return gr.themes.Default(font=FONTS, font_mono=MONO)


def _guard(fn):
    """Errors a person can act on become the page's message; nothing else leaks a traceback."""
    import gradio as gr

    @functools.wraps(fn)
    def wrapped(*args):
        try:
            return fn(*args)
        except PipelineError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        except Exception as exc:  # a bug: the log has the traceback, the page the short reason
            logger.exception("demo request failed")
            raise gr.Error(f"the model failed on this input ({type(exc).__name__}: {str(exc)[:200]})",
                           print_exception=False) from None

    return wrapped


def _examples(project: str, *fields: str) -> list[list[str]]:
    """``fields`` of the first EXAMPLES test examples, read without loading the whole split."""
    import json

    path = demo.ProjectPaths.of(project).splits / "test.jsonl"
    out = []
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    rec = json.loads(line)
                    out.append([str(rec[f]) for f in fields])
                if len(out) >= demo.EXAMPLES:
                    break
    except (OSError, ValueError, KeyError):
        return []
    return out


def _classifier_tab(gr, served: demo.Served) -> None:
    p = served.project
    with gr.Row():
        with gr.Column():
            text = gr.Textbox(label="Text", lines=4, placeholder="Type a text to classify")
            variant = gr.Dropdown(list(served.variants), value=demo.EXPORTED, label="Variant")
            button = gr.Button("Classify", variant="primary")
            examples = _examples(p, served.task.input_field)
            if examples:
                gr.Examples(examples, [text], label="Test examples")
        with gr.Column():
            label = gr.Label(label="Predicted label and every label's probability",
                             num_top_classes=max(2, len(served.variants[demo.EXPORTED][0].config.id2label)))
            words = gr.HighlightedText(label="Words that moved the prediction (left out one at a time: red "
                                             "supported the label, blue went against it)",
                                       combine_adjacent=False, show_legend=False)
            info = gr.Markdown()

    def predict(t, v):
        r = demo.classify(served, t, v)
        peak = max((abs(e) for _, e in r["words"]), default=0.0) or 1.0
        highlighted = [(w + " ", e / peak) for w, e in r["words"]]
        line = f"**{r['label']}** in {r['latency_ms']:.1f} ms ({v or demo.EXPORTED})"
        return r["probabilities"], highlighted, line + (f"\n\n{r['note']}" if r["note"] else "")

    button.click(_guard(predict), [text, variant], [label, words, info], api_name=f"{p}_predict")
    text.submit(_guard(predict), [text, variant], [label, words, info], api_name=False)
    _compare(gr, served, text, None)


def _generator_tab(gr, served: demo.Served) -> None:
    p = served.project
    defaults = demo.decoding_defaults(served)
    model = served.variants[demo.EXPORTED][0]
    longest = max(defaults["max_new_tokens"], getattr(model.config, "max_position_embeddings", 512) - 2)
    with gr.Row():
        with gr.Column():
            text = gr.Textbox(label=f"Input ({served.task.input_field})", lines=8)
            reference = gr.Textbox(label="Reference (optional): gives the sentence scores", lines=2)
        with gr.Column():
            output = gr.Textbox(label=f"Output ({served.task.output_key})", lines=8, interactive=False)
            spans = gr.HighlightedText(label="Words copied from the input", color_map={"copied": "orange"},
                                       show_legend=True)
            info = gr.Markdown()
    with gr.Row():
        variant = gr.Dropdown(list(served.variants), value=demo.EXPORTED, label="Variant")
        beams = gr.Slider(1, 8, value=defaults["num_beams"], step=1, label="Beams")
        penalty = gr.Slider(0.0, 3.0, value=defaults["length_penalty"], step=0.1, label="Length penalty")
        max_new = gr.Slider(1, longest, value=defaults["max_new_tokens"], step=1, label="Maximum new tokens")
    button = gr.Button("Run", variant="primary")
    examples = _examples(p, served.task.input_field, served.task.target_field)
    if examples:
        gr.Examples(examples, [text, reference], label="Test examples, with their references")

    def predict(t, ref, v, nb, lp, mx):
        r = demo.generate(served, t, v, ref or "", nb, lp, mx)
        lines = [f"{r['latency_ms']:.1f} ms ({v or demo.EXPORTED}); output / input length "
                 f"{r['length_ratio']:.2f} (words); {100 * r['copied_share']:.0f}% of the output copied from the input"]
        if r["scores"]:
            lines.append(" · ".join(f"{k} {v:.1f}" for k, v in r["scores"].items()))
        if r["note"]:
            lines.append(r["note"])
        return r["output"], r["spans"], "\n\n".join(lines)

    inputs = [text, reference, variant, beams, penalty, max_new]
    button.click(_guard(predict), inputs, [output, spans, info], api_name=f"{p}_predict")
    _compare(gr, served, text, reference)


def _compare(gr, served: demo.Served, text, reference) -> None:
    with gr.Accordion("Every variant on this input", open=False):
        compare = gr.Button("Compare variants")
        table = gr.Dataframe(interactive=False, wrap=True)

    def run(t, ref=""):
        import pandas as pd

        return pd.DataFrame(demo.compare_variants(served, t, ref or ""))

    inputs = [text] + ([reference] if reference is not None else [])
    compare.click(_guard(run), inputs, [table], api_name=f"{served.project}_compare")


def _results_tab(gr, project: str) -> None:
    import pandas as pd

    found = demo.results(project)
    if found["missing"]:
        gr.Markdown("Not written yet: " + "; ".join(found["missing"]))
    metric = found["primary_metric"]
    if found["variants"]:
        rows = [dict(row) for row in found["variants"]]
        for row in rows:  # intervals as "low to high" text: a cell holds one value
            for key in (f"{metric}_ci95", "metric_change_ci95"):
                if isinstance(row.get(key), list):
                    row[key] = f"{row[key][0]:.4g} to {row[key][1]:.4g}"
        table = pd.DataFrame(rows)
        gr.Markdown(f"### Every variant on the test split ({metric} with its 95 % interval; the change from the "
                    "full model, tested on the same examples; latency: CPU, batch 1)")
        shown = [c for c in ["variant", metric, f"{metric}_ci95", "metric_change", "metric_change_ci95",
                             "metric_change_verdict", "latency_ms", "speedup_batch1", "size_bytes", "parameters",
                             "nonzero_parameters"] if c in table]
        gr.Dataframe(table[shown].round(4), interactive=False)
        if "latency_ms" in table:
            points = table.dropna(subset=["latency_ms"])
            gr.ScatterPlot(points, x="latency_ms", y=metric, color="variant",
                           title=f"{metric} against batch-1 latency (ms)", x_title="latency (ms)", y_title=metric)
    if found["confusion"]:
        c = found["confusion"]
        gr.Markdown("### Confusion matrix (rows: actual, columns: predicted)")
        gr.Dataframe(pd.DataFrame(c["matrix"], columns=c["labels"]).assign(actual=c["labels"])
                     [["actual"] + c["labels"]], interactive=False)
    if found["worst"]:
        gr.Markdown("### The test examples the model got most wrong")
        keep = ["input", "reference", "prediction", "score", "confidence"]
        gr.Dataframe(pd.DataFrame([{k: r.get(k) for k in keep if k in r} for r in found["worst"]]),
                     interactive=False, wrap=True)
    for name, rows in found["curves"].items():
        if not rows:
            continue
        frame = pd.DataFrame(rows).apply(pd.to_numeric, errors="coerce")
        # A loss curve's file also holds the learning rate; a validation curve's holds its primary metric last.
        x = "step" if "step" in frame else frame.columns[0]
        y = "loss" if "loss" in frame else frame.columns[-1]
        gr.LinePlot(frame, x=x, y=y, title=name.replace("_", " "), x_title=x, y_title=y)
    # The same reports as JSON for scripts (/<project>_results): an endpoint, not a control.
    hidden = gr.JSON(visible=False)
    gr.Button("reports", visible=False).click(lambda: demo.results(project), None, hidden,
                                              api_name=f"{project}_results")


def build(params, projects: list[str], model: str | None = None):
    """The app: one tab per project, each with "Try it" and "Results"."""
    import gradio as gr

    with gr.Blocks(title="nlp-pipelines demo") as app:
        gr.Markdown("# nlp-pipelines demo\nEach tab serves a project's model; *Results* shows what its stages "
                    "measured.")
        for project in projects:
            with gr.Tab(project):
                try:
                    served = demo.load_served(params, project, model)
                except PipelineError as exc:
                    gr.Markdown(f"**{project}**: {exc}")
                    served = None
                if served is not None:
                    gr.Markdown(f"**{project}** ({served.task.name}) serves {served.source}.")
                with gr.Tab("Try it"):
                    if served is None:
                        gr.Markdown("No model to try yet.")
                    elif served.generates:
                        _generator_tab(gr, served)
                    else:
                        _classifier_tab(gr, served)
                with gr.Tab("Results"):
                    _results_tab(gr, project)
    return app


def launch(params, projects: list[str], model: str | None, host: str, port: int, block: bool = True):
    app = build(params, projects, model)
    app.queue(default_concurrency_limit=4)
    app.launch(server_name=host, server_port=port, share=False, theme=theme(), show_error=False,
               prevent_thread_lock=not block, quiet=False)
    return app
