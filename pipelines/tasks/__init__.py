"""What differs between the tasks: one package per task, each registering itself.

A task package (``pipelines/tasks/<task>/``) declares its :class:`~pipelines.config.tasks.TaskSpec`
with ``register_task`` in its ``__init__.py`` (fields and their kinds, metrics and their directions,
its project block, presets, builtin data, plot template) and implements
:class:`~pipelines.tasks.contract.TaskModel` in its model module. Stages ask :func:`get_task` for the
task of a project and call its interface; they never branch on a task's name.
docs/adding-a-task.md says how to add one.
"""

from pipelines.config.tasks import Metric, TaskSpec, get_task, register_task, registered_tasks

__all__ = ["Metric", "TaskSpec", "get_task", "register_task", "registered_tasks"]
