"""The task registry and contract: every task package registers itself, implements the typed
interface of pipelines/tasks/contract.py, and the stages reach a task only through it."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from pipelines.config import task_classes
from pipelines.tasks import get_task, registered_tasks
from pipelines.tasks.contract import TaskModel

REPO = Path(__file__).resolve().parents[1]
TASK_PACKAGES = sorted(p.parent.name for p in (REPO / "pipelines" / "tasks").glob("*/__init__.py")
                       if "register_task(" in p.read_text())


def test_every_task_package_registers_itself():
    assert TASK_PACKAGES and sorted(registered_tasks()) == TASK_PACKAGES
    assert set(task_classes()) == set(registered_tasks())


@pytest.mark.parametrize("name", TASK_PACKAGES)
def test_every_task_implements_the_contract_and_brings_its_files(name):
    spec = get_task(name)
    impl = spec.impl()
    assert isinstance(impl, TaskModel)
    assert not inspect.isabstract(type(impl))
    assert spec.presets.is_file() and spec.plot_template.is_file(), name
    # where dvc.yaml's configure and evaluate stages read them
    assert spec.presets == REPO / "pipelines" / "presets" / f"{name}.yaml"
    assert spec.plot_template == REPO / "pipelines" / "plots" / f"{name}.json"
    assert "demo" in __import__("pipelines.config", fromlist=["load_presets"]).load_presets()[name]
    rows = spec.builtin(60, 1)
    assert len(rows) >= 50 and set(spec.fields) <= set(rows[0]), rows[0]
    # every metric the spec names has a direction, and the primary is among them
    assert spec.primary_metric in spec.metric
    assert isinstance(spec.greater_is_better(), bool)


def test_a_model_class_that_misses_a_method_cannot_be_made():
    class Partial(TaskModel):
        def build_tokenizers(self, splits, cfg):
            return {}

    with pytest.raises(TypeError, match="abstract"):
        Partial()


def test_an_unknown_task_is_an_error_naming_the_tasks():
    with pytest.raises(ValueError, match="allowed: classification"):
        get_task("no-such-task")


def test_no_stage_branches_on_a_task_or_project_name():
    names = "|".join(registered_tasks())
    pattern = re.compile(rf"""==\s*["']({names})["']|["']({names})["']\s*==|in\s*\(\s*["']({names})["']""")
    hits = []
    for path in sorted((REPO / "pipelines").rglob("*.py")):
        if path.parent.parent.name == "tasks" and path.name == "__init__.py":
            continue  # where a task declares itself
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                hits.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert not hits, "\n".join(hits)
