"""The demo page and what a person reads after `make run`, on one tiny `dvc repro` of the three demo
projects: every test prediction kept by evaluate, the summary, the demo served on 127.0.0.1 and
called through Gradio's own client, a real headless Chromium on the demo page and on the page
`dvc plots show` writes (which must draw with no network)."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.tiny import demo_server, dvc, int8_only, make_repo_copy, mlflow_json, pipeline_env, run_stages, tiny_params

PROJECTS = ("classification", "translation", "summarization")
# Where the browser test also saves its screenshots (the README's pictures): unset, only tmp.
SCREENSHOTS = os.environ.get("PIPELINES_DEMO_SCREENSHOTS")


@pytest.fixture(scope="module")
def demo_repo(tmp_path_factory) -> Path:
    params = int8_only(tiny_params(list(PROJECTS), size=160))
    for block in params["projects"].values():
        block["finetune"]["epochs"] = 1  # what the models say does not matter here, only that they answer
    # One student variant, so that the page offers more than the full model and its int8.
    params["projects"]["translation"]["compress"]["distillation"].update(enabled=True, epochs=1)
    root = make_repo_copy(tmp_path_factory.mktemp("demo"), params)
    run_stages(root)  # what the demo shows, not how DVC runs it: in this process, imports paid once
    return root


@pytest.fixture(scope="module")
def demo_url(demo_repo):
    with demo_server(demo_repo, timeout=240) as url:
        yield url


def _rows(root: Path, project: str) -> list[dict]:
    return [json.loads(x) for x in (root / f"reports/{project}/predictions.jsonl").read_text().splitlines()]


def test_evaluate_keeps_every_test_prediction_with_its_score(demo_repo):
    import sacrebleu

    for project in PROJECTS:
        rows = _rows(demo_repo, project)
        tests = (demo_repo / f"data/{project}/splits/test.jsonl").read_text().splitlines()
        assert len(rows) == len(tests) and [r["example"] for r in rows] == list(range(len(rows)))
        ev = json.loads((demo_repo / f"reports/{project}/evaluate.json").read_text())
        primary = ev["primary_metric"]
        if project == "classification":
            for r in rows:
                assert math.isclose(sum(r["probabilities"].values()), 1.0, abs_tol=1e-4)
                assert r["prediction"] == next(iter(r["probabilities"]))  # highest first
                assert r["score"] == float(r["prediction"] == r["reference"])
            assert sum(r["score"] for r in rows) / len(rows) == pytest.approx(ev["full"][primary])
        else:
            assert all(0.0 <= r["score"] <= 100.0 and r["score"] == r["scores"][primary] for r in rows)
    # A translation's sentence score is sacrebleu's own (lowercased: the tokenizer lowercases).
    r = _rows(demo_repo, "translation")[0]
    expected = sacrebleu.sentence_bleu(r["prediction"].lower(), [r["reference"].lower()]).score
    assert r["scores"]["bleu"] == pytest.approx(expected, abs=1e-3)
    # DVC caches it as an output of evaluate.
    assert "reports/classification/predictions.jsonl" in (demo_repo / "dvc.lock").read_text()


def test_summary_gives_one_line_per_project_and_where_to_look(demo_repo):
    proc = subprocess.run([sys.executable, "-m", "pipelines", "summary"], cwd=demo_repo, env=pipeline_env(demo_repo),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("classification: test accuracy ") and "int8 " in lines[0]
    assert all("(95 % CI " in line and " examples)" in line for line in lines[:3]), lines
    assert lines[1].startswith("translation: test bleu ") and "best compressed: student" in lines[1]
    assert lines[2].startswith("summarization: test rougeL ")
    assert all("registered v1" in line and "champion moved to it" in line for line in lines[:3])
    assert "make demo" in proc.stdout and "dvc plots show" in proc.stdout


def test_the_registered_model_takes_decoding_params_within_bounds(demo_repo):
    out = mlflow_json(demo_repo, (
        "import mlflow.pyfunc;"
        "m = mlflow.pyfunc.load_model('models:/translation@champion');"
        "sig = m.metadata.signature;"
        "src = 'a man rides a red horse near the old house';"
        "short = m.predict({'source': [src]}, params={'num_beams': 1, 'max_new_tokens': 2});"
        "err = None\n"
        "try:\n m.predict({'source': [src]}, params={'num_beams': 100})\n"
        "except Exception as e:\n err = str(e)\n"
        "print(json.dumps({'params': {p.name: p.default for p in sig.params}, 'short': short['translation'][0],"
        " 'example': m.metadata.saved_input_example_info is not None, 'err': err}))"))
    evaluate = yaml.safe_load((demo_repo / "params.yaml").read_text())["projects"]["translation"]["evaluate"]
    assert out["params"] == {"num_beams": evaluate["num_beams"], "length_penalty": evaluate["length_penalty"],
                             "max_new_tokens": evaluate["max_new_tokens"]}
    assert out["example"]
    assert len(out["short"].split()) <= 2
    assert "num_beams is 100; at most 16" in out["err"]


def test_every_tab_answers_through_the_app_client(demo_url, demo_repo):
    from gradio_client import Client

    client = Client(demo_url, verbose=False)
    label, words, info = client.predict("a wonderful and moving film", "exported", api_name="/classification_predict")
    probs = {c["label"]: c["confidence"] for c in label["confidences"]}
    labels = json.loads((demo_repo / "models/classification/finetuned/config.json").read_text())["id2label"]
    assert set(probs) == set(labels.values()) and math.isclose(sum(probs.values()), 1.0, abs_tol=1e-4)
    assert label["label"] == max(probs, key=probs.get)
    assert [w["token"].strip() for w in words] == "a wonderful and moving film".split()
    assert "ms (exported)" in info
    table = client.predict("a dull film", api_name="/classification_compare")
    assert [row[0] for row in table["data"]] == ["exported", "full", "int8"]

    source = json.loads((demo_repo / "data/translation/splits/test.jsonl").read_text().splitlines()[0])
    for variant in ("exported", "int8", "student"):
        output, spans, info = client.predict(source["source"], source["target"], variant, 2, 1.0, 12,
                                             api_name="/translation_predict")
        assert isinstance(output, str) and f"ms ({variant})" in info
        assert "bleu" in info and "chrf" in info
    doc = json.loads((demo_repo / "data/summarization/splits/test.jsonl").read_text().splitlines()[0])
    output, spans, info = client.predict(doc["document"], doc["summary"], "exported", 1, 1.0, 8,
                                         api_name="/summarization_predict")
    assert "".join(s["token"] for s in spans).strip() == output.strip()
    assert "rougeL" in info and "copied from the input" in info

    results = client.predict(api_name="/classification_results")
    assert {v["variant"] for v in results["variants"]} == {"full", "int8"}
    assert sum(map(sum, results["confusion"]["matrix"])) == len(_rows(demo_repo, "classification"))
    worst = results["worst"]
    assert worst and worst == sorted(worst, key=lambda r: (r["score"], -r["confidence"]))
    assert results["curves"]["finetune_loss"]


def test_bad_input_gets_a_message_not_a_traceback(demo_url):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client = Client(demo_url, verbose=False)
    with pytest.raises(AppError, match="is empty; send non-empty text") as err:
        client.predict("   ", "exported", api_name="/classification_predict")
    assert "Traceback" not in str(err.value)
    with pytest.raises(AppError, match="characters; the limit is"):
        client.predict("word " * 20000, "exported", api_name="/classification_predict")
    # Longer than the model reads, within the characters it takes: answered, with a note.
    _, _, info = client.predict("good " * 400, "exported", api_name="/classification_predict")
    assert "the rest was ignored" in info
    with pytest.raises(AppError, match="fp16 is not in the list of choices"):
        client.predict("a text", "fp16", api_name="/classification_predict")


def test_a_project_without_a_model_names_the_command_that_makes_one(demo_repo, tmp_path, monkeypatch):
    from pipelines.serving import demo, demo_app
    from pipelines.config import load_params

    params = load_params(demo_repo / "params.yaml")
    shutil.copy(demo_repo / "params.yaml", tmp_path / "params.yaml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    with pytest.raises(demo.DemoError, match=r"no trained model yet: run `dvc repro export@translation`"):
        demo.load_served(params, "translation")
    app = demo_app.build(params, ["translation"])
    shown = json.dumps(app.config)
    assert "dvc repro export@translation" in shown and "Traceback" not in shown


def _chromium():
    from selenium import webdriver

    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (binary and driver):
        pytest.skip("Debian's chromium and chromium-driver are not installed (scripts/browser.sh installs them "
                    "as root with apt-get; `make test` runs it)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run",
                 "--disable-sync", "--window-size=1280,1000"):
        options.add_argument(flag)
    from selenium.webdriver.chrome.service import Service

    return webdriver.Chrome(service=Service(driver), options=options)


def _save(browser, name: str, tmp_path: Path) -> Path:
    path = tmp_path / name
    browser.save_screenshot(str(path))
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(SCREENSHOTS) / name)
    return path


def test_a_person_classifies_a_text_in_the_browser(demo_url, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    browser = _chromium()
    try:
        browser.get(demo_url)
        wait = WebDriverWait(browser, 60)
        box = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "textarea")))
        box.send_keys("a wonderful and moving film")
        next(b for b in browser.find_elements(By.TAG_NAME, "button") if b.text.strip() == "Classify").click()
        wait.until(lambda b: "ms (exported)" in b.find_element(By.TAG_NAME, "body").text)
        body = browser.find_element(By.TAG_NAME, "body").text
        assert "%" in body  # the label's bars carry their probabilities
        bars = browser.find_elements(By.CSS_SELECTOR, "[data-testid='label-output-value'], .confidence-set")
        assert bars, "no probability bars on the page"
        assert _save(browser, "demo-classification.png", tmp_path).stat().st_size > 10_000
        for tab, name in (("translation", "demo-translation.png"), ("summarization", "demo-summarization.png")):
            next(b for b in browser.find_elements(By.CSS_SELECTOR, "button[role='tab']") if b.text.strip() == tab).click()
            time.sleep(1)
            _save(browser, name, tmp_path)
        # Nothing on the page came from another host.
        external = browser.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)"
            ".filter(u => !u.startsWith(location.origin) && !u.startsWith('data:') && !u.startsWith('blob:'))")
        assert external == []
    finally:
        browser.quit()


def test_dvc_plots_show_draws_offline(demo_repo, tmp_path):
    from selenium.webdriver.support.ui import WebDriverWait

    out = tmp_path / "plots"
    dvc(demo_repo, "plots", "show", "-o", str(out))
    page = (out / "index.html").read_text()
    assert "cdn.jsdelivr" not in page and "<script src=" not in page  # the libraries are inlined
    browser = _chromium()
    try:
        browser.get((out / "index.html").as_uri())
        divs = browser.execute_script("return document.querySelectorAll('.vega-embed, div[id]').length")
        assert divs > 0

        def drawn(b):
            return b.execute_script(
                "const c = [...document.querySelectorAll('canvas, svg.marks')];"
                "return c.filter(e => (e.width || e.clientWidth) > 0).length")

        WebDriverWait(browser, 30).until(lambda b: drawn(b) >= 9)  # 3 projects x (curves, confusion, variants)
        _save(browser, "dvc-plots.png", tmp_path)
    finally:
        browser.quit()
