"""A registered model answers real HTTP requests from `mlflow models serve`, and `predict` runs a
model over a file. Both on the tiny classification model of the end-to-end test. The registered
model is logged from code: it holds no pickle, and loads where only its own files are."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
import yaml

from tests.tiny import free_port, pipeline_env, stop_group, tiny_params, wait_for_http


def _predict(root, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines", "predict", "classification", *args], cwd=root,
                          env=pipeline_env(root), capture_output=True, text=True, timeout=300)


def test_predict_writes_labels_next_to_the_inputs(classification_outputs):
    root = classification_outputs
    inputs = root / "inputs.txt"
    inputs.write_text("a wonderful, moving film\nthe plot was dull and far too long\nfine\n")
    proc = _predict(root, str(inputs))
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(x) for x in (root / "inputs.txt.predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and rows[0]["text"] == "a wonderful, moving film"
    assert all(0.0 <= r["score"] <= 1.0 and isinstance(r["label"], str) for r in rows)

    # The version export registered from this export folder gives the same answers. Its number comes
    # from the export report DVC keeps with the folder: other tests of this checkout train and
    # register later versions, and restore an earlier folder from the run cache, so `candidate` (the
    # latest registered) need not be the folder now in the workspace.
    version = json.loads((root / "reports/classification/export.json").read_text())["version"]
    proc = _predict(root, str(inputs), "--model", f"models:/classification/{version}", "--output",
                    str(root / "champion.jsonl"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    registered = [json.loads(x) for x in (root / "champion.jsonl").read_text().splitlines()]
    assert [r["label"] for r in registered] == [r["label"] for r in rows]
    assert [r["score"] for r in registered] == pytest.approx([r["score"] for r in rows], abs=1e-5)


def test_predict_reads_standard_input_and_writes_standard_output(classification_outputs):
    root = classification_outputs
    texts = "a wonderful, moving film\nthe plot was dull and far too long\n"
    proc = subprocess.run([sys.executable, "-m", "pipelines", "predict", "classification", "-"], cwd=root,
                          env=pipeline_env(root), input=texts, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [r["text"] for r in rows] == texts.splitlines() and all(isinstance(r["label"], str) for r in rows)
    assert '"output": "-"' in proc.stderr  # the summary goes to standard error
    bad = subprocess.run([sys.executable, "-m", "pipelines", "predict", "classification", "-"], cwd=root,
                         env=pipeline_env(root), input='{"text": "good"}\n{"text": ""}\n', capture_output=True,
                         text=True, timeout=300)
    assert bad.returncode == 3 and "standard input, line 2: 'text' is empty" in bad.stderr and not bad.stdout
    assert "stdin" not in bad.stderr  # the scratch copy is gone when the user reads the message: not named
    empty = subprocess.run([sys.executable, "-m", "pipelines", "predict", "classification", "-"], cwd=root,
                           env=pipeline_env(root), input="\n", capture_output=True, text=True, timeout=300)
    assert empty.returncode == 3 and "standard input, line 1: 'text' is empty" in empty.stderr, empty.stderr[-2000:]


def test_predict_rejects_an_empty_input_and_writes_nothing(classification_outputs):
    root = classification_outputs
    bad = root / "bad.jsonl"
    bad.write_text(json.dumps({"text": "good"}) + "\n" + json.dumps({"text": "  "}) + "\n")
    proc = _predict(root, str(bad))
    assert proc.returncode == 3
    assert "bad.jsonl, line 2: 'text' is empty" in proc.stderr and "Traceback" not in proc.stderr
    assert not (root / "bad.jsonl.predictions.jsonl").exists()
    good = root / "good.jsonl"
    good.write_text(json.dumps({"text": "good"}) + "\n")
    proc = _predict(root, str(good), "--model", "models/nowhere")
    assert proc.returncode == 3 and "not an export folder" in proc.stderr


def test_mlflow_models_serve_answers_requests(classification_outputs):
    root = classification_outputs
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/classification@champion",
         "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)],
        cwd=root, env=pipeline_env(root, MLFLOW_ALLOW_PICKLE_DESERIALIZATION="false"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def post(body: dict) -> tuple[int, dict]:
        req = urllib.request.Request(f"{url}/invocations", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    try:
        wait_for_http(f"{url}/ping", server, 180, log=lambda: server.stderr.read())
        status, body = post({"inputs": ["a wonderful, moving film", "dull"]})
        assert status == 200, body
        preds = body["predictions"]
        assert len(preds) == 2 and {"label", "score", "probabilities"} <= set(preds[0])
        probs = preds[0]["probabilities"]  # every label, the predicted one first
        assert next(iter(probs)) == preds[0]["label"] and abs(sum(probs.values()) - 1) < 1e-4
        assert len(probs) == len(json.loads((root / "models/classification/finetuned/config.json").read_text())["id2label"])

        status, body = post({"inputs": ["fine", ""]})
        assert status == 400 and "input 1 is empty" in body.get("message", ""), body
        status, body = post({"inputs": ["word " * 1000]})
        assert status == 400 and "input 0 has 5000 characters; the limit is" in body.get("message", ""), body
        status, body = post({"dataframe_split": {"columns": ["review", "stars"], "data": [["good", 5]]}})
        assert status == 400 and "expected a column named 'text'" in body.get("message", ""), body
        # one column of another name is not taken for the text either
        status, body = post({"dataframe_split": {"columns": ["review"], "data": [["a fine film"]]}})
        assert status == 400 and "expected a column named 'text'" in body.get("message", ""), body
        status, body = post({"dataframe_split": {"columns": ["id", "text"], "data": [[7, "a fine film"]]}})
        assert status == 200 and len(body["predictions"]) == 1, body

        # a number is not a text, wherever it comes
        for request in ({"inputs": ["fine", 3]}, {"inputs": {"text": ["fine", 3]}},
                        {"dataframe_split": {"columns": ["text"], "data": [["fine"], [3]]}},
                        {"dataframe_records": [{"text": "fine"}, {"text": 3}]}):
            status, body = post(request)
            assert status == 400 and "input 1 is int, expected a string" in body.get("message", ""), (request, body)
        status, body = post({"inputs": ["fine", None]})
        assert status == 400 and "input 1 is missing" in body.get("message", ""), body

        # one bare string: a short refusal that says to send a list, no stack trace
        status, body = post({"inputs": "a fine film"})
        assert status == 400 and "a list, even of one text" in body.get("message", ""), body
        assert "Traceback" not in json.dumps(body) and "stack_trace" not in body

        # an error never sends the request back
        huge = "word " * 2_000_000
        status, body = post({"inputs": ["fine", huge]})
        assert status == 400 and "input 1 has 10000000 characters" in body.get("message", ""), body
        assert len(json.dumps(body)) < 1000 and "word word" not in json.dumps(body), json.dumps(body)[:300]
    finally:
        stop_group(server, grace=30)


def test_the_registered_model_holds_no_pickle_and_loads_from_its_own_files(classification_outputs, tmp_path):
    root = classification_outputs
    code = (
        "import json, pathlib, mlflow, pandas as pd;"
        "folder = pathlib.Path(mlflow.artifacts.download_artifacts('models:/classification@champion'));"
        "files = sorted(str(p.relative_to(folder)) for p in folder.rglob('*') if p.is_file());"
        "flavor = mlflow.models.Model.load(str(folder)).flavors['python_function'];"
        "model = mlflow.pyfunc.load_model('models:/classification@champion');"
        "preds = model.predict(pd.DataFrame({'text': ['a wonderful, moving film', 'dull']}));"
        "import pipelines;"
        "print(json.dumps({'files': files, 'flavor': sorted(flavor), 'labels': preds['label'].tolist(),"
        " 'pipelines': pipelines.__file__}))"
    )
    # Away from the repository copy, as on a serving host: the package comes from the model's code/.
    # With pickles refused, MLflow would fail to load a model that held one.
    env = pipeline_env(root, MLFLOW_ALLOW_PICKLE_DESERIALIZATION="false")
    env.pop("PYTHONPATH")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    pickles = [f for f in found["files"] if f.endswith((".pkl", ".pickle"))]
    assert not pickles, pickles
    assert "model_code_path" in found["flavor"] and "python_model" not in found["flavor"], found["flavor"]
    assert "code/pipelines/serving/pyfunc.py" in found["files"]
    assert "/code/pipelines/" in found["pipelines"], found["pipelines"]
    assert len(found["labels"]) == 2 and all(isinstance(x, str) for x in found["labels"])


def test_a_model_of_another_task_is_refused(classification_outputs, tmp_path):
    root = classification_outputs
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(tiny_params(["classification", "translation"]), sort_keys=False))
    (tmp_path / "in.jsonl").write_text(json.dumps({"source": "a sentence"}) + "\n")
    proc = subprocess.run([sys.executable, "-m", "pipelines", "predict", "translation", str(tmp_path / "in.jsonl"),
                           "--model", "models/classification/export", "--params", str(params)], cwd=root,
                          env=pipeline_env(root), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "is a classification model, but project 'translation' is translation" in proc.stderr
    assert not (tmp_path / "in.jsonl.predictions.jsonl").exists()
