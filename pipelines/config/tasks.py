"""The registry of tasks: what each task declares about itself, and where the declarations are found.

A task is a package under ``pipelines/tasks/`` (or any installed package named by an
``nlp_pipelines.tasks`` entry point) that calls :func:`register_task` once, when imported, with its
:class:`TaskSpec`: its data fields and their kinds, its metrics and their directions, its project
block's class, its presets, its builtin data and its model code. No list of tasks is written
anywhere else: params.yaml's validation, the stages, predict, serving and the demo ask the registry.

The spec is light (pydantic and the standard library): reading params.yaml never imports torch. The
model code is reached through ``spec.model()``, which imports it on first use.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal

if TYPE_CHECKING:
    from pipelines.config.project import ProjectBase

# What a field of the data holds; predict, serving and the demo read inputs by kind.
FieldKind = Literal["text", "label", "image"]
# The package whose sub-packages are the tasks that ship with the product.
TASKS_PACKAGE = "pipelines.tasks"
ENTRY_POINT_GROUP = "nlp_pipelines.tasks"


@dataclass(frozen=True)
class Metric:
    """One figure a task reports, and which way is better."""

    name: str
    """As reports, MLflow and the registry name it."""
    key: str | None = None
    """The task's metric module's name for it, when it differs."""
    greater_is_better: bool = True
    """False for an error rate, a loss, a perplexity, a latency."""
    validation: bool = True
    """Also scored on the validation split each epoch (early stopping and the best checkpoint use the primary)."""

    @property
    def result_key(self) -> str:
        return self.key or self.name

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly better than ``b``."""
        return a > b if self.greater_is_better else a < b


@dataclass(frozen=True, eq=False)
class TaskSpec:
    """Everything the pipeline knows about a task besides its model code."""

    name: str
    config: type[ProjectBase]
    """The class of a project block of this task (its ``task:`` literal names the task)."""
    fields: dict[str, str]
    """Canonical field -> attribute of the project's data block naming the user's column."""
    kinds: dict[str, FieldKind]
    """Canonical field -> what it holds."""
    input_field: str
    target_field: str
    metrics: tuple[Metric, ...]
    primary_metric: str
    metric_module: str
    """The local metric module (pipelines/metrics) that scores the model's outputs."""
    output_key: str
    """What the model returns per input, under this key (predict, serving)."""
    model: Callable[[], Any]
    """Imports and returns the task's model code, a ``pipelines.tasks.contract.TaskModel`` (torch,
    transformers); a callable, so that reading a spec imports neither."""
    builtin: Callable[[int, int], list[dict]]
    """``builtin(size, seed)``: the deterministic demo data of ``data.source: builtin``."""
    presets: Path
    """The task's presets file (pipelines/presets/<task>.yaml): named starting points, each laid over the task's ``demo``."""
    plot_template: Path
    """The DVC plot template of the test predictions (plots/<project>/evaluate.csv)."""
    intended_use: str
    """How the model card says what the model does."""
    metric_records: tuple[str, ...] = ()
    """Results of the metric module recorded as text (signatures, settings)."""
    metric_lowercase: bool = False
    """The metric compares case-insensitively when the tokenizer lowercases."""
    pair_rule: Literal["length_ratio", "shorter_target"] | None = None
    """clean's rule for a pair of texts: the sides' lengths within clean.max_length_ratio, or the target
    shorter than its input by clean.min_compression; None: no pair."""
    extra_fields: dict[str, str] | None = None
    """Optional list-valued fields carried through (several references per example)."""
    _model: list = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self):
        names = [m.name for m in self.metrics]
        problems = []
        if self.primary_metric not in names:
            problems.append(f"primary_metric {self.primary_metric!r} is not one of its metrics {names}")
        for f in (self.input_field, self.target_field):
            if f not in self.fields or f not in self.kinds:
                problems.append(f"field {f!r} needs an entry in both fields and kinds")
        if problems:
            raise ValueError(f"task {self.name!r}: " + "; ".join(problems))

    @property
    def text_fields(self) -> tuple[str, ...]:
        """The fields that must be non-empty text after cleaning, in the order of ``fields``."""
        return tuple(f for f in self.fields if self.kinds.get(f) == "text")

    @property
    def input_kind(self) -> FieldKind:
        return self.kinds[self.input_field]

    @cached_property
    def metric(self) -> dict[str, Metric]:
        return {m.name: m for m in self.metrics}

    @property
    def primary(self) -> Metric:
        return self.metric[self.primary_metric]

    @property
    def validation_metrics(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.metrics if m.validation)

    @property
    def test_metrics(self) -> dict[str, str]:
        """Report name -> the metric module's result name."""
        return {m.name: m.result_key for m in self.metrics}

    def greater_is_better(self, metric: str | None = None) -> bool:
        """The direction of ``metric`` (default: the primary); a name with a ``validation ``/``test ``
        prefix or an ``eval_`` prefix is the same metric."""
        name = metric or self.primary_metric
        for prefix in ("validation ", "test ", "eval_"):
            name = name.removeprefix(prefix)
        if name not in self.metric:
            raise KeyError(f"task {self.name!r} has no metric {name!r}; its metrics: {', '.join(self.metric)}")
        return self.metric[name].greater_is_better

    def impl(self):
        """The task's model code (imports torch and transformers on first use)."""
        if not self._model:
            self._model.append(self.model())
        return self._model[0]


_REGISTRY: dict[str, TaskSpec] = {}
_DISCOVERED: list[bool] = []


def register_task(spec: TaskSpec) -> TaskSpec:
    """Add a task; its package calls this once when imported."""
    known = _REGISTRY.get(spec.name)
    if known is not None and known.config is not spec.config:
        raise ValueError(f"two tasks are named {spec.name!r} ({known.config.__module__} and {spec.config.__module__})")
    task_field = spec.config.model_fields.get("task")
    if task_field is None or task_field.default != spec.name:
        raise ValueError(f"task {spec.name!r}: its project class {spec.config.__name__} must have "
                         f"`task: Literal[{spec.name!r}] = {spec.name!r}`")
    _REGISTRY[spec.name] = spec
    return spec


def _discover() -> None:
    """Import every task package once: the product's own, then those of installed plugins."""
    if _DISCOVERED:
        return
    _DISCOVERED.append(True)
    package = importlib.import_module(TASKS_PACKAGE)
    for info in pkgutil.iter_modules(package.__path__, TASKS_PACKAGE + "."):
        if info.ispkg:
            importlib.import_module(info.name)
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        ep.load()


def registered_tasks() -> dict[str, TaskSpec]:
    """Every registered task by name, in a stable order."""
    _discover()
    return dict(sorted(_REGISTRY.items()))


def get_task(name: str) -> TaskSpec:
    known = registered_tasks()
    try:
        return known[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; allowed: {', '.join(known)}") from None


def task_of(value: Any) -> str | None:
    """The ``task:`` of a project block, raw or validated."""
    return value.get("task") if isinstance(value, dict) else getattr(value, "task", None)
