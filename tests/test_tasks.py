"""The task contract: every registered task provides what pipelines/tasks/contract.py lists, and
the stages reach a task only through it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipelines.config import TASK_CLASSES
from pipelines.tasks import TASKS, get_task
from pipelines.tasks.contract import Defaults

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_provides_the_contract(name):
    impl = get_task(name).impl()
    assert impl.missing() == [], f"{name} lacks {impl.missing()}"
    for default in (n for n in vars(Defaults) if not n.startswith("_")):
        getattr(impl, default)  # the module's own, or the default


def test_an_unknown_name_is_an_error_naming_the_contract():
    with pytest.raises(AttributeError, match="task contract"):
        get_task("classification").impl().no_such_function  # noqa: B018


def test_every_task_has_a_config_and_a_plot_template():
    assert set(TASK_CLASSES) == set(TASKS)
    for name in TASKS:
        assert (REPO / ".dvc" / "plots" / f"{name}.json").is_file(), name


def test_no_stage_branches_on_a_task_or_project_name():
    names = "|".join(TASKS)
    pattern = re.compile(rf"""==\s*["']({names})["']|["']({names})["']\s*==|in\s*\(\s*["']({names})["']""")
    hits = []
    for path in sorted((REPO / "pipelines").rglob("*.py")):
        if path.name in ("config.py", "__init__.py") and path.parent.name in ("pipelines", "tasks"):
            continue  # where the tasks are declared
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                hits.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert not hits, "\n".join(hits)
