#!/usr/bin/env bash
# Creates (or reuses) the project's virtualenv in a cache directory outside the repo and installs
# the package with every extra the tests need. Prints nothing but errors; sourced by scripts/demo
# and scripts/test, which then use $OTEL_MONITORING_VENV.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${OTEL_MONITORING_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/otel-monitoring}"
python="${PYTHON:-python3}"
pyver="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
venv="$cache/venv-py$pyver"
mkdir -p "$cache"
if [ ! -x "$venv/bin/python" ]; then
  echo "bootstrap: creating the virtualenv $venv" >&2
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
fi
# Reinstall when the dependencies or the checkout location change (the install is editable).
stamp="$(cat "$repo/pyproject.toml" | sha256sum | cut -c1-16)-$repo"
# The linter comes with the dev extra; a venv made before it was added lacks it.
if [ "$(cat "$venv/.otel-monitoring-stamp" 2>/dev/null || true)" != "$stamp" ] || [ ! -x "$venv/bin/ruff" ]; then
  echo "bootstrap: installing otel-monitoring[dev] into $venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$repo[dev]" >&2
  echo "$stamp" > "$venv/.otel-monitoring-stamp"
fi
export OTEL_MONITORING_CACHE="$cache"
export OTEL_MONITORING_VENV="$venv"
