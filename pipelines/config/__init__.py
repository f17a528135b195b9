"""Typed, validated view of ``params.yaml``: the one source of configuration.

- :mod:`.base`: the strict base of every block and the value types they share;
- :mod:`.shared`: the blocks every project shares (common, runtime, tracking);
- :mod:`.blocks` and :mod:`.compress`: the blocks of a project, one per concern;
- :mod:`.project`: what every project block holds, whatever its task;
- :mod:`.tasks`: the registry where each task declares itself and its project block's class;
- :mod:`.loading`: params.yaml over the presets, validated, every problem reported at once;
- :mod:`.reference`: docs/params.md, from the fields' own descriptions.
"""

from pipelines.config.base import Strict
from pipelines.config.blocks import (CleanConfig, DataChangeConfig, DataConfig, EvaluateConfig, ExportConfig,
                                     FinetuneConfig, ModelConfig, PretrainConfig, SplitConfig, TokenizerConfig,
                                     TrainConfig)
from pipelines.config.compress import CompressConfig, DistillationConfig, PruningConfig
from pipelines.config.loading import (DEFAULT_PARAMS, Params, flatten, load_params, load_presets, merged,
                                      params_model, parse_params, parse_yaml, read_yaml, resolve_projects,
                                      task_classes)
from pipelines.config.project import DEFAULT_PRESET, ProjectBase
from pipelines.config.shared import CommonConfig, RuntimeConfig, TrackingConfig
from pipelines.core.errors import ConfigError
from pipelines.config.tasks import Metric, TaskSpec, get_task, register_task, registered_tasks

__all__ = ["ConfigError", "DEFAULT_PARAMS", "DEFAULT_PRESET", "CleanConfig", "CommonConfig", "CompressConfig", "DataChangeConfig",
           "DataConfig", "DistillationConfig", "EvaluateConfig", "ExportConfig", "FinetuneConfig", "Metric",
           "ModelConfig", "Params", "PretrainConfig", "ProjectBase", "PruningConfig", "RuntimeConfig", "SplitConfig",
           "Strict", "TaskSpec", "TokenizerConfig", "TrackingConfig", "TrainConfig", "flatten", "get_task",
           "load_params", "load_presets", "merged", "params_model", "parse_params", "parse_yaml", "read_yaml",
           "register_task", "registered_tasks", "resolve_projects", "task_classes"]
