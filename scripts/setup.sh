#!/usr/bin/env bash
# Create .venv and install the project with its pinned dependencies, once per change of pyproject.toml.
# Works offline given a package registry; torch is pinned so pip takes a CPU wheel on CPU machines.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
STAMP="$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-16)"

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
if [ ! -f "$STAMP" ]; then
  echo "Installing dependencies into $VENV (a few minutes the first time)..." >&2
  "$VENV/bin/python" -m pip install --quiet --upgrade pip 2>/dev/null || true
  # The pinned torch is installed first so nothing pulls a CUDA build on a CPU machine.
  "$VENV/bin/python" -m pip install --quiet "torch==2.13.0" 2>&1 | grep -v "is ignored: it is neither" >&2 || true
  "$VENV/bin/python" -m pip install --quiet --compile -e ".[dev]" 2>&1 | grep -v "is ignored: it is neither" >&2 || true
  "$VENV/bin/python" -c "import pipelines, torch, transformers, dvc, mlflow, prefect" \
    || { echo "setup: installation failed (see messages above)" >&2; exit 1; }
  rm -f "$VENV"/.installed-*
  touch "$STAMP"
fi
# The offline page of `dvc plots show` (.dvc/config names it): written once, kept while current.
"$VENV/bin/python" -m pipelines.core.plots_page \
  || echo "setup: the offline plots template was not written; \`dvc plots show\` will need the internet" >&2
