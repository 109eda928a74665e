#!/usr/bin/env bash
# Installs the programs the operator-view tests drive as a person would: Debian's chromium (the
# HTML report is opened and screenshotted headless) and tmux (`otel-monitoring top` runs in a real
# terminal), redis-server and postgresql (the storage instrumentation is tested against a real Redis
# and a throwaway PostgreSQL cluster on 127.0.0.1; Debian keeps initdb/postgres in
# /usr/lib/postgresql/<major>/bin, off PATH). Each is installed only when missing; needs root or
# sudo for apt-get.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v tmux >/dev/null 2>&1 || missing+=(tmux)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v initdb >/dev/null 2>&1 || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)  # the doctor test's self-signed certificate
[ "${#missing[@]}" -eq 0 ] && exit 0
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "install-test-tools: need root to install ${missing[*]} (apt-get); the tests that drive them are skipped" >&2
    exit 0
  fi
fi
echo "install-test-tools: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >&2
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" fonts-dejavu-core >/dev/null
