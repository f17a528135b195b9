"""Reading params.yaml into the validated :class:`Params`.

The file is parsed once. Each project block is laid over the preset it names, from its task's
presets file (pipelines/presets/<task>.yaml), and validated by the project class its task registers (pipelines/config/tasks.py).
Every problem (an unknown or misspelt key, a wrong type, an out-of-range value, an impossible
combination) is collected and raised together as one :class:`ConfigError`, before any stage works.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
from pathlib import Path
from typing import Annotated, Any, Union

from pydantic import BaseModel, Discriminator, Tag, ValidationError, create_model
from ruamel.yaml import YAML
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import YAMLError

from pipelines.config.base import Strict
from pipelines.config.project import DEFAULT_PRESET, ProjectBase
from pipelines.config.shared import CommonConfig, RuntimeConfig, TrackingConfig
from pipelines.config.tasks import registered_tasks, task_of
from pipelines.core.errors import ConfigError

DEFAULT_PARAMS = "params.yaml"
PACKAGE_ROOT = Path(__file__).resolve().parents[1]
# A project's name becomes a folder (data/<name>, models/<name>), a DVC stage key (<stage>@<name>), an
# MLflow experiment and registered model name and a Prefect deployment name: letters, digits, '_'
# and '-' are safe in all of them.
PROJECT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class Params(Strict):
    common: CommonConfig = CommonConfig()
    runtime: RuntimeConfig = RuntimeConfig()
    tracking: TrackingConfig = TrackingConfig()
    projects: dict[str, ProjectBase] = {}
    """name -> project; the name is the user's, the project's `task:` says what it is (validated by the
    class its task registers, see :func:`params_model`)."""

    def project(self, name: str) -> ProjectBase:
        """The block of one project; a clear error when it is absent."""
        block = self.projects.get(name)
        if block is None:
            close = difflib.get_close_matches(name, list(self.projects), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"params.yaml has no project {name!r}{hint} Projects: "
                              f"{', '.join(self.projects) or 'none'}. Add a block under 'projects:' (see README) "
                              "to run it")
        return block


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """Walk a pydantic model class along an error location; None if it leaves the models."""
    import typing

    cur: Any = model
    for part in loc:
        if not (isinstance(cur, type) and issubclass(cur, BaseModel)):
            return None
        field = cur.model_fields.get(part)
        if field is None:
            return None
        ann = field.annotation
        candidates = [a for a in typing.get_args(ann) if isinstance(a, type) and issubclass(a, BaseModel)]
        cur = candidates[0] if candidates else ann
    return cur if isinstance(cur, type) and issubclass(cur, BaseModel) else None


_PROJECT_KEYS = frozenset(ProjectBase.model_fields) | {"task", "data"}


def task_classes() -> dict[str, type[ProjectBase]]:
    """Task name -> the class of its project blocks, for every registered task."""
    return {name: spec.config for name, spec in registered_tasks().items()}


@functools.cache
def _params_model(names: tuple[str, ...]) -> type[Params]:
    union = Union[tuple(Annotated[task_classes()[n], Tag(n)] for n in names)] if len(names) > 1 else \
        Annotated[task_classes()[names[0]], Tag(names[0])]
    return create_model("Params", __base__=Params,
                        projects=(dict[str, Annotated[union, Discriminator(task_of)]], {}))


def params_model() -> type[Params]:
    """:class:`Params` whose project blocks are validated by the class of their task."""
    return _params_model(tuple(task_classes()))


def _describe(model: type[BaseModel], err: dict) -> str:
    # pydantic puts union member tags into the location: class names, and under projects.<name> the
    # task that picked the project's model. Drop both.
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p[:1].isupper()))
    project_model = None
    classes = task_classes()
    if len(loc) >= 3 and loc[0] == "projects" and loc[2] in classes:
        project_model = classes[loc[2]]
        loc = loc[:2] + loc[3:]
    key = ".".join(str(p) for p in loc) or "(top level)"
    etype = err["type"]
    value = err.get("input")
    if etype == "extra_forbidden":
        if project_model is not None:
            parent = _model_at(project_model, loc[2:-1])
        else:
            parent = _model_at(model, loc[:-1])
        allowed = sorted(parent.model_fields) if parent else []
        hint = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        msg = f"{key}: unknown key"
        if hint:
            msg += f"; did you mean '{'.'.join(map(str, loc[:-1] + (hint[0],)))}'?"
        if allowed:
            msg += f" Allowed keys here: {', '.join(allowed)}"
        if len(loc) == 1 and isinstance(value, dict) and "data" in value:
            msg += f". A project goes under 'projects:', with a task (projects: {{{loc[0]}: {{task: ..., ...}}}})"
        return msg
    if etype == "value_error":
        # Validators word their messages from the project block down ("model.init ..."): prefix the project.
        text = str(err.get("msg", "")).removeprefix("Value error, ")
        if project_model is not None or (len(loc) == 2 and loc[0] == "projects"):
            where = f"projects.{loc[1]}"
            return f"{where}.{text}" if text.split(".", 1)[0] in _PROJECT_KEYS else f"{where}: {text}"
        return text
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return f"{key}: {err['msg']} (got {shown})"


def load_presets() -> dict[str, dict[str, dict]]:
    """task -> preset name -> the preset's project block, from each task's presets file. Every preset
    of a task starts from the task's ``demo`` preset and changes what it lists."""
    out = {}
    for task, spec in registered_tasks().items():
        by_name = read_yaml(spec.presets) or {}
        by_name = {name: block or {} for name, block in by_name.items()}
        demo = by_name.get(DEFAULT_PRESET, {})
        out[task] = {name: block if name == DEFAULT_PRESET else merged(demo, block) for name, block in by_name.items()}
    return out


def merged(base: Any, over: Any) -> Any:
    """``over`` on top of ``base``: mappings merge key by key, anything else is replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = merged(base.get(key), value) if key in base else value
        return out
    return over


def resolve_projects(raw_projects: Any, problems: list[str]) -> dict[str, dict]:
    """Check the project names and tasks, and fill each block from its preset. Problems are added
    to ``problems``; the projects that could be resolved are returned."""
    if raw_projects is None:
        problems.append("no projects; add a 'projects:' block with at least one project (see README)")
        return {}
    if not isinstance(raw_projects, dict):
        problems.append(f"projects must map project names to blocks, got {type(raw_projects).__name__}")
        return {}
    presets = load_presets()
    seen: dict[str, str] = {}
    out = {}
    for name, block in raw_projects.items():
        if not isinstance(name, str):
            problems.append(f"projects.{name}: YAML reads this project name as a {type(name).__name__}, not as text, "
                            "and so does DVC; put the name in quotes in params.yaml, or start it with a letter")
            continue
        if not PROJECT_NAME.match(name):
            problems.append(f"projects.{name}: a project name must start with an ASCII letter or digit and hold only "
                            "ASCII letters, digits, '_' and '-' (at most 64): it names folders, DVC stages, MLflow "
                            "models and deployments")
            continue
        if name.lower() in seen:
            problems.append(f"projects.{name} and projects.{seen[name.lower()]} differ only in case; their folders "
                            "would be one on a case-insensitive disk: rename one")
            continue
        seen[name.lower()] = name
        if not isinstance(block, dict):
            problems.append(f"projects.{name} must be a block of settings with a task, got "
                            f"{type(block).__name__}")
            continue
        task = block.get("task")
        if task not in presets:
            said = "has no task" if task is None else f"task {task!r} is not one of the tasks"
            problems.append(f"projects.{name}.task: the project {said}; set task: to one of "
                            f"{', '.join(presets)}")
            continue
        preset = block.get("preset", DEFAULT_PRESET)
        available = presets.get(task, {})
        if not isinstance(preset, str) or preset not in available:
            problems.append(f"projects.{name}.preset: {preset!r} is not a {task} preset; choose one of "
                            f"{', '.join(available)} ({registered_tasks()[task].presets.relative_to(PACKAGE_ROOT.parent)})")
            continue
        out[name] = merged(available[preset], block)
    return out


def parse_params(raw: Any, source: str = DEFAULT_PARAMS, *, training_paths_absent: bool = False) -> Params:
    """Validate an already-loaded params mapping; raise ConfigError naming every problem.

    Each project's block is laid over the preset it names (``preset:``, default ``demo``), key by key.
    ``training_paths_absent``: skip the checks that the data source and the checkpoint folder exist,
    for a machine that only predicts with a model trained elsewhere."""
    if raw is None:
        raise ConfigError(f"{source} is empty; start from the 'projects:' block in the README's Concepts "
                          "section (more in docs/projects.md)")
    if not isinstance(raw, dict):
        raise ConfigError(f"{source} must hold a mapping of blocks at the top level, got {type(raw).__name__}")
    problems: list[str] = []
    resolved = {**raw, "projects": resolve_projects(raw.get("projects"), problems)}
    try:
        params = params_model().model_validate(resolved, context={"training_paths_absent": training_paths_absent})
    except ValidationError as exc:
        problems.extend(_describe(params_model(), e) for e in exc.errors(include_url=False))
        params = None
    if params is not None and not params.projects and not problems:
        problems.append("projects is empty; add at least one project (a name, a task and a data source)")
    if problems:
        lines = "\n".join(f"  - {p}" for p in dict.fromkeys(problems))
        raise ConfigError(f"{source} has {len(problems)} problem(s):\n{lines}")
    return params


def load_params(path: str | os.PathLike = DEFAULT_PARAMS, *, training_paths_absent: bool = False) -> Params:
    """Read and validate params.yaml (``training_paths_absent``: see :func:`parse_params`)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path} not found; run from the repository root or pass --params PATH")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}: byte {data[exc.start]:#04x} on line {line} is not UTF-8 (the file was saved in "
                          "another encoding, such as latin-1); save it as UTF-8") from None
    try:
        raw = parse_yaml(text)
    except YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {_yaml_problem(exc)}") from None
    return parse_params(raw, str(path), training_paths_absent=training_paths_absent)


def parse_yaml(text: str) -> Any:
    """YAML as DVC reads params.yaml (ruamel, YAML 1.2): a key written twice in one mapping is an error
    there, so it is one here too (PyYAML would keep the last value, and `check` and `dvc repro` would
    read different settings)."""
    return YAML(typ="safe", pure=True).load(text)


def read_yaml(path: Path) -> Any:
    try:
        return parse_yaml(Path(path).read_text(encoding="utf-8"))
    except YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {_yaml_problem(exc)}") from None


def _yaml_problem(exc: YAMLError) -> str:
    if isinstance(exc, DuplicateKeyError):
        key = re.search(r'duplicate key "([^"]*)"', str(exc.problem))
        where = exc.problem_mark.line + 1 if exc.problem_mark else "?"
        start = exc.context_mark.line + 1 if exc.context_mark else "?"
        return (f"key {key.group(1) if key else '?'!r} appears twice (again on line {where}, in the mapping that "
                f"starts on line {start}); keep one")
    return str(exc).split("\nTo suppress this check")[0]


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten nested params to dotted keys, for logging every setting with the run."""
    if isinstance(obj, BaseModel):
        obj = obj.model_dump()
    out: dict[str, Any] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}{k}."))
    else:
        out[prefix.rstrip(".")] = obj
    return out
