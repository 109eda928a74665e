#!/usr/bin/env bash
# Build or install the native monitoring stack into a cache outside the repo, reusing what is there:
#   - the OpenTelemetry Collector, built by the official builder (ocb) from collector-config/builder-config.yaml
#   - Jaeger v2, built from its Go module
#   - Prometheus and promtool, Alertmanager and amtool, from Debian's packages
#   - VictoriaLogs (the log store), built from its Go module
# Everything comes through the Go module proxy or apt; no toolchain or binary downloads (GOTOOLCHAIN=local).
#
#   scripts/build-stack.sh               build what is missing, report progress
#   scripts/build-stack.sh --print-env   same, then print `export OTEL_MONITORING_*=...` lines on stdout
#   scripts/build-stack.sh --config-dir DIR   read builder-config.yaml from DIR (default: collector-config/
#                                        beside this script's directory)
# `otel-monitoring stack build [--print-env]` runs this same script, shipped in the package, with the
# package's copy of collector-config/.
#
# Cache: ${OTEL_MONITORING_CACHE:-$HOME/.cache/otel-monitoring}/stack/<component>-<version>[-<manifest hash>]/
# Progress goes to stderr only, so `eval "$(scripts/build-stack.sh --print-env)"` is safe.
set -euo pipefail

OCB_VERSION=v0.152.0
# Jaeger v2.13.0 is published as the module version v1.76.0 (Jaeger tags both lines on one commit).
JAEGER_MODULE_VERSION=v1.76.0
VICTORIALOGS_VERSION=v1.52.1

here="$(cd "$(dirname "$0")" && pwd)"
cache="${OTEL_MONITORING_CACHE:-$HOME/.cache/otel-monitoring}"
stack_cache="$cache/stack"
config_dir="$here/../collector-config"

print_env=0
while [ "$#" -gt 0 ]; do
  case "$1" in
    --print-env) print_env=1 ;;
    --config-dir)
      [ "$#" -ge 2 ] || { echo "build-stack.sh: --config-dir needs a directory" >&2; exit 2; }
      config_dir="$2"; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "build-stack.sh: unknown argument '$1' (use --print-env, --config-dir DIR or --help)" >&2; exit 2 ;;
  esac
  shift
done
manifest="$(cd "$config_dir" 2>/dev/null && pwd)/builder-config.yaml" || true
if [ ! -f "$manifest" ]; then
  echo "build-stack.sh: no builder-config.yaml in $config_dir (pass --config-dir with the collector-config directory)" >&2
  exit 2
fi

log() { echo "build-stack: $*" >&2; }

export GOTOOLCHAIN=local
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
# Module and build caches live in the stack cache too, so a cold build is reproducible and removable.
export GOMODCACHE="${GOMODCACHE_OVERRIDE:-$stack_cache/go/mod}"
export GOCACHE="${GOCACHE_OVERRIDE:-$stack_cache/go/build}"
export GOPATH="$stack_cache/go/path"
mkdir -p "$stack_cache" "$GOMODCACHE" "$GOCACHE" "$GOPATH"

# One build at a time per cache: concurrent test runs would otherwise share the work directories.
exec 9>"$stack_cache/.build.lock"
if ! flock -n 9; then
  log "waiting for another build-stack.sh run to finish"
  flock 9
fi

require_go() {
  if ! command -v go >/dev/null 2>&1; then
    log "Go is not installed; install Go >= 1.25 (the collector and Jaeger are built from source)."
    exit 1
  fi
}

build_collector() {
  local key dir bin
  # Keyed by the manifest without its comments: editing a comment does not rebuild.
  key="$(grep -v '^\s*#' "$manifest" | sha256sum | cut -c1-12)"
  dir="$stack_cache/otelcol-$OCB_VERSION-$key"
  bin="$dir/otelcol-monitoring"
  if [ -x "$bin" ]; then
    OTELCOL="$bin"
    return
  fi
  require_go
  local ocb_dir="$stack_cache/ocb-$OCB_VERSION"
  if [ ! -x "$ocb_dir/builder" ]; then
    log "installing the collector builder $OCB_VERSION"
    GOBIN="$ocb_dir" go install "go.opentelemetry.io/collector/cmd/builder@$OCB_VERSION" >&2
  fi
  log "building the collector from $manifest (cold: several minutes)"
  local work="$dir.work"
  rm -rf "$work"
  mkdir -p "$work"
  sed "s#^  output_path: .*#  output_path: $work/src#" "$manifest" >"$work/builder-config.yaml"
  # The builder generates the sources; the modules are resolved with `go get .` rather than the
  # builder's `go mod tidy`, which also resolves the test-only imports of every dependency (some of
  # which, e.g. zpagesextension v0.152.0, the module proxy does not serve). Same versions, fewer modules.
  "$ocb_dir/builder" --config "$work/builder-config.yaml" --skip-get-modules --skip-compilation >&2
  (
    cd "$work/src"
    go get . >&2
    local resolved
    resolved="$(go list -m -f '{{.Version}}' go.opentelemetry.io/collector/otelcol)"
    if [ "$resolved" != "$OCB_VERSION" ]; then
      log "collector core resolved to $resolved, not $OCB_VERSION: fix the versions in $manifest"
      exit 1
    fi
    go build -trimpath -ldflags="-s -w" -o otelcol-monitoring . >&2
  )
  mkdir -p "$dir"
  mv "$work/src/otelcol-monitoring" "$bin.tmp"
  mv "$bin.tmp" "$bin"
  rm -rf "$work"
  # Builds of earlier manifests are not used again (a running one keeps its file until it exits).
  find "$stack_cache" -maxdepth 1 -name 'otelcol-*' -type d ! -path "$dir" -exec rm -rf {} + 2>/dev/null || true
  OTELCOL="$bin"
}

build_jaeger() {
  local dir="$stack_cache/jaeger-$JAEGER_MODULE_VERSION"
  local bin="$dir/jaeger"
  if [ -x "$bin" ]; then
    JAEGER="$bin"
    return
  fi
  require_go
  log "building Jaeger v2 (module $JAEGER_MODULE_VERSION)"
  local work="$dir.work"
  rm -rf "$work"
  mkdir -p "$work"
  # `go install jaeger@version` refuses modules whose go.mod has replace directives, so build it from a
  # throwaway main module that requires Jaeger and carries the same replace directives.
  # Its go.sum comes along: the checksum database behind the module proxy does not answer for some
  # of Jaeger's (older) collector dependencies, and Jaeger's own go.sum already pins their hashes.
  local download upstream_mod upstream_dir
  download="$(go mod download -json "github.com/jaegertracing/jaeger@$JAEGER_MODULE_VERSION")"
  upstream_mod="$(echo "$download" | sed -n 's/^\s*"GoMod": "\(.*\)",$/\1/p')"
  upstream_dir="$(echo "$download" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')"
  cp "$upstream_dir/go.sum" "$work/go.sum"
  {
    echo "module otelmonitoring.local/jaegerbuild"
    echo
    echo "go 1.25"
    echo
    grep -E '^replace ' "$upstream_mod" || true
  } >"$work/go.mod"
  (
    cd "$work"
    go get "github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_MODULE_VERSION" >&2
    go build -trimpath -o "$work/jaeger" github.com/jaegertracing/jaeger/cmd/jaeger >&2
  )
  mkdir -p "$dir"
  mv "$work/jaeger" "$bin.tmp"
  mv "$bin.tmp" "$bin"
  rm -rf "$work"
  JAEGER="$bin"
}

build_victorialogs() {
  local dir="$stack_cache/victorialogs-$VICTORIALOGS_VERSION"
  local bin="$dir/victoria-logs"
  if [ -x "$bin" ]; then
    VICTORIALOGS="$bin"
    return
  fi
  require_go
  log "building VictoriaLogs $VICTORIALOGS_VERSION (cold: about a minute)"
  local work="$dir.work"
  rm -rf "$work"
  mkdir -p "$work"
  # Its storage needs cgo (it links libc only); the web UI is embedded in the module.
  CGO_ENABLED=1 GOBIN="$work" go install -trimpath -ldflags="-s -w" \
    "github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs@$VICTORIALOGS_VERSION" >&2
  mkdir -p "$dir"
  mv "$work/victoria-logs" "$bin.tmp"
  mv "$bin.tmp" "$bin"
  rm -rf "$work"
  VICTORIALOGS="$bin"
}

install_prometheus() {
  if [ -x /usr/bin/prometheus ] && [ -x /usr/bin/promtool ] && [ -x /usr/bin/prometheus-alertmanager ] && [ -x /usr/bin/amtool ]; then
    PROMETHEUS=/usr/bin/prometheus
    PROMTOOL=/usr/bin/promtool
    ALERTMANAGER=/usr/bin/prometheus-alertmanager
    AMTOOL=/usr/bin/amtool
    return
  fi
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    log "Prometheus or Alertmanager is missing: install Debian's packages as root: apt-get update && apt-get install -y prometheus prometheus-alertmanager"
    exit 1
  fi
  log "installing Prometheus and Alertmanager from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  # policy-rc.d 101: the package must not start its own service; we run our own processes.
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    created_policy=1
  fi
  local status=0
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus prometheus-alertmanager; } >&2 || status=$?
  if [ "$created_policy" = 1 ]; then rm -f "$policy"; fi
  if [ "$status" != 0 ]; then
    log "apt-get could not install prometheus (exit $status); install it by hand: apt-get install -y prometheus prometheus-alertmanager"
    exit 1
  fi
  # In case an init system started them anyway, stop the Debian services (their ports 9090 and
  # 9093 are the stack's defaults).
  local service_name
  for service_name in prometheus prometheus-alertmanager; do
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$service_name" 2>/dev/null; then
      systemctl stop "$service_name" >&2 || true
    fi
    if command -v service >/dev/null 2>&1; then
      service "$service_name" stop >/dev/null 2>&1 || true
    fi
  done
  PROMETHEUS=/usr/bin/prometheus
  PROMTOOL=/usr/bin/promtool
  ALERTMANAGER=/usr/bin/prometheus-alertmanager
  AMTOOL=/usr/bin/amtool
}

timed() {
  local step_start=$SECONDS
  "$@"
  log "$1: $(( SECONDS - step_start ))s"
}

start=$(date +%s)
timed build_collector
timed build_jaeger
timed build_victorialogs
timed install_prometheus
log "stack ready in $(( $(date +%s) - start ))s (cache: $stack_cache)"

if [ "$print_env" = 1 ]; then
  printf 'export OTEL_MONITORING_OTELCOL=%q\n' "$OTELCOL"
  printf 'export OTEL_MONITORING_JAEGER=%q\n' "$JAEGER"
  printf 'export OTEL_MONITORING_PROMETHEUS=%q\n' "$PROMETHEUS"
  printf 'export OTEL_MONITORING_PROMTOOL=%q\n' "$PROMTOOL"
  printf 'export OTEL_MONITORING_ALERTMANAGER=%q\n' "$ALERTMANAGER"
  printf 'export OTEL_MONITORING_AMTOOL=%q\n' "$AMTOOL"
  printf 'export OTEL_MONITORING_VICTORIALOGS=%q\n' "$VICTORIALOGS"
fi
