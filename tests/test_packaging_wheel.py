"""The stack as a user gets it: a wheel built from this checkout, installed into a fresh virtualenv
outside the repository, runs `otel-monitoring stack build|up|status|down` from another directory
with the configs, rules, dashboards and build script it carries as package data."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile

import pytest

from otel_monitoring.stack.components import StackPorts
from otel_monitoring.stack.runner import ORDER
from stackprocs import http_get_text, require_binary, require_jaeger_ui
from support import REPO, clean_env, free_port

pytestmark = pytest.mark.stack


def _tracked_files(prefix: str) -> list[str]:
    listed = subprocess.run(["git", "-C", REPO, "ls-files", "--cached", "--others", "--exclude-standard", prefix],
                            capture_output=True, text=True, check=True).stdout.split()
    return [path for path in listed if os.path.exists(os.path.join(REPO, path))]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A wheel of this checkout (its files copied first, so the build leaves nothing in the repository),
    and what the build printed."""
    if shutil.which("git") is None or not os.path.isdir(os.path.join(REPO, ".git")) and not os.path.isfile(os.path.join(REPO, ".git")):
        pytest.skip("needs a git checkout")
    source = tmp_path_factory.mktemp("source")
    for path in _tracked_files("."):
        target = source / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.join(REPO, path), target)
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(out), str(source)],
                          capture_output=True, text=True, timeout=600, env=clean_env())
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (path,) = out.glob("otel_monitoring-*.whl")
    return path, done.stdout + done.stderr


@pytest.fixture(scope="module")
def wheel(built):
    return built[0]


def test_the_build_warns_of_nothing_and_the_wheel_carries_every_runtime_file(built):
    """setuptools warned that each data directory mapped into the wheel "would be ignored" (it was
    not listed as a package); the examples the demo imports and the packaged rules and prices ship too."""
    path, log = built
    assert "would be ignored" not in log and "BuildBackendWarning" not in log, log[-5000:]
    names = set(zipfile.ZipFile(path).namelist())
    expected = {f"otel_monitoring/examples/{p[len('examples/'):]}" for p in _tracked_files("examples")}
    expected |= {p for p in _tracked_files("otel_monitoring") if not p.endswith(".pyc")}
    assert "otel_monitoring/examples/trading_bot.py" in expected and "otel_monitoring/data/alert_rules.yaml" in expected
    assert not expected - names, sorted(expected - names)


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory):
    """A fresh virtualenv with the wheel installed. Its dependencies come from the test's own
    environment through a path entry (no index needed), after the venv's site-packages, so the
    package imported is the wheel's."""
    root = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=120)
    python = root / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    with open(os.path.join(site, "deps-from-test-env.pth"), "w", encoding="utf-8") as handle:
        handle.write(sysconfig.get_paths()["purelib"] + "\n")
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", site, str(wheel)],
                               capture_output=True, text=True, timeout=300, env=clean_env())
    assert installed.returncode == 0, installed.stderr[-3000:]
    # pip --target does not write console scripts: the entry point, as an installer would write it.
    script = root / "bin" / "otel-monitoring"
    script.write_text(f"#!{python}\nimport sys\nfrom otel_monitoring.cli import main\nsys.exit(main())\n")
    script.chmod(0o755)
    return root, site


def test_the_wheel_carries_every_stack_file_of_the_repository(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"otel_monitoring/stack/collector_config/{path[len('collector-config/'):]}"
                for path in _tracked_files("collector-config")}
    assert expected and not expected - names, sorted(expected - names)
    assert "otel_monitoring/stack/scripts/build-stack.sh" in names
    # Only the build script comes from scripts/ (not the developer's bootstrap/test/demo scripts).
    assert [n for n in names if n.startswith("otel_monitoring/stack/scripts/")] == ["otel_monitoring/stack/scripts/build-stack.sh"]


def test_installed_wheel_builds_and_runs_the_stack_from_another_directory(venv, tmp_path):
    root, site = venv
    binaries = {"OTEL_MONITORING_OTELCOL": require_binary("otelcol"), "OTEL_MONITORING_JAEGER": require_binary("jaeger"),
                "OTEL_MONITORING_PROMETHEUS": require_binary("prometheus"),
                "OTEL_MONITORING_ALERTMANAGER": require_binary("alertmanager"),
                "OTEL_MONITORING_VICTORIALOGS": require_binary("victorialogs")}
    ui = require_jaeger_ui()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # The build script's cache is where this suite's programs were built (a warm build).
    cache = os.path.dirname(os.path.dirname(os.path.dirname(binaries["OTEL_MONITORING_JAEGER"])))
    env = clean_env(OTEL_MONITORING_CACHE=cache, PYTHONPATH="", PATH=f"{root / 'bin'}:{os.environ['PATH']}")
    env.pop("PYTHONPATH")

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(root / "bin" / "otel-monitoring"), "stack", *args], cwd=elsewhere, env=env,
                              capture_output=True, text=True, timeout=600)

    where = subprocess.run([str(root / "bin" / "python"), "-c", "import otel_monitoring; print(otel_monitoring.__file__)"],
                           cwd=elsewhere, env=env, capture_output=True, text=True)
    assert where.stdout.startswith(site), where.stdout + where.stderr

    if os.path.basename(os.path.dirname(binaries["OTEL_MONITORING_JAEGER"])).startswith("jaeger-") and \
            os.path.basename(os.path.dirname(os.path.dirname(binaries["OTEL_MONITORING_JAEGER"]))) == "stack":
        built = cli("build", "--print-env")
        assert built.returncode == 0, built.stderr[-3000:]
        # The shipped script built nothing new: same manifest, same cache, same programs.
        assert f"export OTEL_MONITORING_JAEGER={binaries['OTEL_MONITORING_JAEGER']}" in built.stdout
        assert f"export OTEL_MONITORING_OTELCOL={binaries['OTEL_MONITORING_OTELCOL']}" in built.stdout
        assert "stack ready" in built.stderr

    ports = {name: free_port() for name in StackPorts.port_names()}
    port_args = [arg for name, port in ports.items() for arg in (f"--{name.replace('_', '-')}-port", str(port))]
    state = tmp_path / "state"
    env.update(binaries)
    up = cli("up", "--state-dir", str(state), "--jaeger-ui", ui, *port_args)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        status = cli("status", "--state-dir", str(state))
        assert status.returncode == 0 and status.stdout.count("healthy") == len(ORDER), status.stdout
        # The configs came from the package: the collector and Prometheus were started with its files.
        for name in ("collector", "jaeger"):
            with open(f"/proc/{int((state / f'{name}.pid').read_text())}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
            config = argv[argv.index(b"--config") + 1].decode()
            assert config.startswith(os.path.join(site, "otel_monitoring", "stack", "collector_config")), config
        rules = http_get_text(f"http://127.0.0.1:{ports['prometheus']}/api/v1/rules")
        assert "CollectorExportFailing" in rules  # the packaged alert rules are loaded
        page = http_get_text(f"http://127.0.0.1:{ports['jaeger_query']}/")
        assert "<title>Jaeger UI</title>" in page
    finally:
        down = cli("down", "--state-dir", str(state))
    assert down.returncode == 0, down.stdout + down.stderr
    assert not os.listdir(elsewhere)  # nothing written where the user stood
    # --config-dir still overrides: an empty directory is refused by name.
    refused = cli("up", "--state-dir", str(tmp_path / "other"), "--config-dir", str(elsewhere), *port_args)
    assert refused.returncode == 1 and "agent.yaml" in refused.stdout
