"""What a stage reads is what dvc.yaml says it reads.

`dvc repro` re-runs exactly what changed only as far as each stage's `params:` and `deps:` lists are
true. Each stage of a tiny project runs here, in-process, with a view of the params in which every
block and key its dvc.yaml entry does not declare raises when read (a whole-block read such as
`model_dump()` included), while a profiler records which of the package's files ran; every such file
must be covered by the stage's `deps`, but for the few that cannot change what a stage writes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from pipelines.config import parse_params
from tests.tiny import REPO, tiny_params

STAGES = ("configure", "ingest", "clean", "split", "tokenize", "pretrain", "finetune", "compress", "evaluate", "export")

# Modules a stage runs that cannot change what it writes: the entry point, error classes, the
# validation of params (the values themselves are declared params), per-machine settings, the
# layout (which dvc.yaml's paths spell out), and MLflow logging (runs are records, not outputs; the
# export stage, where tracking.py decides the champion, declares it).
NEUTRAL = {"pipelines/__init__.py", "pipelines/__main__.py", "pipelines/cli/main.py", "pipelines/core/errors.py",
           "pipelines/config/", "pipelines/core/settings.py", "pipelines/core/paths.py",
           "pipelines/tracking/runs.py", "pipelines/core/dvc_lock.py",
           "pipelines/tasks/__init__.py",  # it re-exports the registry's names
           "pipelines/core/inputs.py"}  # what a served model refuses: read by predict and serving, not by a stage


def neutral(rel: str) -> bool:
    if rel.endswith("__init__.py") and _only_a_docstring(REPO / rel):
        return True  # a package's docstring cannot change what a stage writes
    return any(rel == n or (n.endswith("/") and rel.startswith(n)) for n in NEUTRAL)


def _only_a_docstring(path: Path) -> bool:
    import ast

    body = ast.parse(path.read_text()).body
    return all(isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) for node in body)


# Params a stage may read without declaring: the MLflow experiment its run is logged under is where
# the record goes, not part of what the stage makes (changing it must not retrain anything).
NEUTRAL_PARAMS = {"tracking.experiment_prefix"}


class UndeclaredRead(Exception):
    pass


class Undeclared:
    """Stands for a params value the stage did not declare: any use of it raises."""

    def __init__(self, path: str, reads: list):
        object.__setattr__(self, "_path", path)
        object.__setattr__(self, "_reads", reads)

    def _hit(self, *args, **kwargs):
        path = object.__getattribute__(self, "_path")
        object.__getattribute__(self, "_reads").append(path)
        raise UndeclaredRead(f"read {path}, which dvc.yaml does not declare for this stage")

    __getattr__ = __str__ = __repr__ = __bool__ = __iter__ = __len__ = __eq__ = __hash__ = _hit
    __format__ = __getitem__ = __int__ = __float__ = __lt__ = __gt__ = __contains__ = _hit


def restrict(model: BaseModel, prefix: str, declared: set[str], reads: list, originals: dict) -> BaseModel:
    """A copy of ``model`` in which every field not covered by ``declared`` is :class:`Undeclared`;
    ``originals`` maps each copy (by id) back to the model it stands for."""
    update = {}
    for name in type(model).model_fields:
        path = f"{prefix}{name}"
        if any(path == d or path.startswith(d + ".") for d in declared):
            continue
        value = getattr(model, name)
        if isinstance(value, dict) and all(isinstance(v, BaseModel) for v in value.values()):
            # projects: each project restricted on its own
            update[name] = {k: restrict(v, f"{path}.{k}.", declared, reads, originals) for k, v in value.items()}
        elif isinstance(value, BaseModel) and any(d.startswith(path + ".") for d in declared):
            update[name] = restrict(value, path + ".", declared, reads, originals)
        else:
            update[name] = Undeclared(path, reads)
            originals[id(update[name])] = value
    copy = model.model_copy(update=update)
    originals[id(copy)] = model
    return copy


def reveal(value, originals: dict):
    """What a restricted value stands for: logging every setting with the run is a record of the
    run, not an input of what the stage writes, so it may see them all."""
    if id(value) in originals:
        return originals[id(value)]
    if isinstance(value, dict):
        return {k: reveal(v, originals) for k, v in value.items()}
    return value


def _undeclared_inside(model: BaseModel) -> str | None:
    for value in model.__dict__.values():
        if isinstance(value, Undeclared):
            return object.__getattribute__(value, "_path")
        for inner in value.values() if isinstance(value, dict) else [value]:
            if isinstance(inner, BaseModel) and (found := _undeclared_inside(inner)):
                return found
    return None


def declarations(project: str, task: str) -> dict[str, tuple[set[str], list[str]]]:
    """Per stage: the settings and the deps dvc.yaml declares, with the project filled in. A
    dependency on configs/<project>/<part>.json declares the part projects.<project>.<part>."""
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    out = {}
    for name, stage in dvc["stages"].items():
        body = stage["do"]
        params = {str(p).replace("${key}", project) for p in body.get("params", [])}
        deps = [str(d).replace("${key}", project).replace("${item.task}", task) for d in body.get("deps", [])]
        prefix = f"configs/{project}/"
        for dep in deps:
            if dep.startswith(prefix):
                part = dep.removeprefix(prefix).removesuffix(".json")
                params.add(f"projects.{project}" if part == "project" else f"projects.{project}.{part}")
        out[name] = (params | NEUTRAL_PARAMS | {f"projects.{project}.task", f"projects.{project}.preset"}, deps)
    return out


def covered(path: Path, deps: list[str]) -> bool:
    rel = path.relative_to(REPO).as_posix()
    return any(rel == d or rel.startswith(d.rstrip("/") + "/") for d in deps)


@pytest.fixture
def stage_runner(tmp_path, monkeypatch):
    monkeypatch.setenv("PIPELINES_ROOT", str(tmp_path / "project"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    (tmp_path / "project").mkdir()
    real_dump = BaseModel.model_dump
    reads: list[str] = []

    def checked_dump(self, *args, **kwargs):
        if (path := _undeclared_inside(self)) is not None:
            reads.append(path)
            raise UndeclaredRead(f"read all of a block holding {path}, which dvc.yaml does not declare")
        return real_dump(self, *args, **kwargs)

    monkeypatch.setattr(BaseModel, "model_dump", checked_dump)
    originals: dict = {}

    def recorded(obj, prefix=""):
        # flatten() of the settings feeds only tracking.log_params, MLflow's record of the run.
        monkeypatch.setattr(BaseModel, "model_dump", real_dump)
        try:
            return real_flatten(reveal(obj, originals), prefix)
        finally:
            monkeypatch.setattr(BaseModel, "model_dump", checked_dump)

    from pipelines import config
    from pipelines.stages import finetune, pretrain

    real_flatten = config.flatten
    for module in (finetune, pretrain):
        monkeypatch.setattr(module, "flatten", recorded)

    def run(project: str, raw: dict) -> dict[str, dict]:
        import importlib

        params = parse_params(raw)
        found = {}
        for stage, (declared, deps) in declarations(project, params.project(project).task).items():
            del reads[:]
            originals.clear()
            view = restrict(params, "", declared, reads, originals)
            ran: set[str] = set()
            package = str(REPO / "pipelines")

            def profile(frame, event, arg):
                if event == "call" and frame.f_code.co_filename.startswith(package):
                    ran.add(frame.f_code.co_filename)

            module = importlib.import_module(f"pipelines.stages.{stage}")
            sys.setprofile(profile)
            try:
                module.run(view, project)
            except Exception:
                if not reads:
                    raise
                # The read is recorded; the stage could not go on without the value (it may have
                # wrapped the error into its own).
            finally:
                sys.setprofile(None)
            files = sorted(Path(f) for f in ran)
            found[stage] = {
                "params": sorted(set(reads)),
                "code": sorted(rel for f in files if not neutral(rel := f.relative_to(REPO).as_posix())
                               and not covered(f, deps)),
            }
            if reads:
                break  # later stages need this stage's outputs
        return found

    return run


@pytest.mark.parametrize("project", ["classification", "translation", "summarization"])
def test_every_stage_reads_only_what_dvc_yaml_declares(stage_runner, project):
    raw = tiny_params([project], size=120)
    # What a stage reads does not depend on how well it trains or on how many examples it scores.
    raw["projects"][project]["evaluate"]["max_examples"] = 8
    if project != "classification":
        raw["projects"][project]["finetune"]["epochs"] = 1
    found = stage_runner(project, raw)
    problems = {stage: f for stage, f in found.items() if f["params"] or f["code"]}
    assert set(found) == set(STAGES) or problems, found
    assert not problems, "\n".join(f"{s}: {f}" for s, f in problems.items())


def test_the_check_catches_an_undeclared_read(stage_runner, monkeypatch):
    """The check is not vacuous: a stage that reads a block it does not declare is named."""
    from pipelines.stages import clean

    real = clean.clean_records

    def peeking(records, task, cfg):
        _ = cfg.export.variant
        return real(records, task, cfg)

    monkeypatch.setattr(clean, "clean_records", peeking)
    found = stage_runner("classification", tiny_params(["classification"], size=160))
    assert found["clean"]["params"] == ["projects.classification.export"], found


def test_a_preset_change_reruns_exactly_the_stages_that_read_it(tmp_path):
    """DVC tracks params.yaml keys; a preset's values reach the stages through configure's files."""
    from tests.tiny import dvc, make_repo_copy

    params = tiny_params(["classification"], size=120)
    root = make_repo_copy(tmp_path / "repo", params)
    dvc(root, "repro", "configure@classification")
    # Everything is unrun; configure's part files now exist. A preset value the project does not
    # set changes one part file only.
    before = {p.name: p.read_text() for p in (root / "configs" / "classification").iterdir()}
    presets = root / "pipelines" / "presets" / "classification.yaml"
    text = presets.read_text()
    # the tiny params set every key, so change a default the block does not set: clean.strip_html
    block = yaml.safe_load((root / "params.yaml").read_text())
    del block["projects"]["classification"]["clean"]["strip_html"]
    (root / "params.yaml").write_text(yaml.safe_dump(block, sort_keys=False))
    presets.write_text(text.replace("strip_html: true", "strip_html: false", 1))
    dvc(root, "repro", "configure@classification")
    after = {p.name: p.read_text() for p in (root / "configs" / "classification").iterdir()}
    assert {n for n in before if before[n] != after[n]} == {"clean.json", "project.json"}
