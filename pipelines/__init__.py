"""End-to-end NLP project pipelines: a project is a task over the user's data, run by DVC stages.

The packages, by concern (docs/layout.md): ``cli`` (the command line), ``stages`` (one module per DVC
stage), ``tasks`` (what differs between tasks, each registering itself), ``config``, ``data``,
``training``, ``compression``, ``models``, ``tracking``, ``serving``, ``sweep``, ``metrics`` and ``core``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("nlp-pipelines")  # pyproject.toml is the one place the version is written
except PackageNotFoundError:  # a checkout run without `pip install -e .`
    __version__ = "0+unknown"
