"""Settings: precedence, validation messages, and the generated configuration reference."""

import logging
import os
import stat
import subprocess
import sys

import pytest

from otel_monitoring.config import OPTIONS, ConfigError, load_settings, markdown_table
from otel_monitoring.exporters import build_exporters, exporter_names, otlp_endpoint
from support import REPO


def test_argument_wins_over_environment_which_wins_over_default():
    env = {"OTEL_SERVICE_NAME": "from-env", "OTEL_METRIC_EXPORT_INTERVAL": "2500"}
    settings = load_settings({"service_name": "from-arg"}, environ=env)
    assert settings.service_name == "from-arg"
    assert settings.source("service_name") == "argument"
    assert settings.metric_export_interval == pytest.approx(2.5)  # ms in the variable, seconds here
    assert settings.source("metric_export_interval") == "env OTEL_METRIC_EXPORT_INTERVAL"
    assert settings.sampler == "parentbased_always_on"
    assert settings.source("sampler") == "default"


def test_exporter_argument_wins_over_per_signal_environment_but_not_per_signal_argument():
    env = {"OTEL_TRACES_EXPORTER": "console", "OTEL_METRICS_EXPORTER": "console"}
    settings = load_settings({"exporter": "none", "logs_exporter": "console"}, environ=env)
    assert exporter_names(settings, "traces") == ("none",)
    assert exporter_names(settings, "logs") == ("console",)


def test_default_exporter_is_files_without_an_endpoint_and_otlp_with_one():
    assert exporter_names(load_settings(environ={}), "traces") == ("otlp_file",)
    with_endpoint = load_settings(environ={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"})
    assert exporter_names(with_endpoint, "metrics") == ("otlp",)


def test_endpoint_resolution_follows_the_otlp_exporter_spec():
    http = load_settings(environ={"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                                  "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/base",
                                  "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://logs:9999/custom"})
    assert otlp_endpoint(http, "traces") == ("http/protobuf", "http://collector:4318/base/v1/traces")
    assert otlp_endpoint(http, "logs") == ("http/protobuf", "http://logs:9999/custom")
    grpc = load_settings(environ={})
    assert otlp_endpoint(grpc, "metrics") == ("grpc", "http://127.0.0.1:4317")


@pytest.mark.parametrize(
    "env, names_in_message",
    [
        ({"OTEL_TRACES_EXPORTER": "otlpx"}, ["OTEL_TRACES_EXPORTER", "otlpx", "otlp_file", "Example: OTEL_TRACES_EXPORTER=otlp"]),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "127.0.0.1:4317/v1"}, ["OTEL_EXPORTER_OTLP_ENDPOINT", "neither an http(s) URL nor host:port", "Example: OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317"]),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "127.0.0.1:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, ["OTEL_EXPORTER_OTLP_ENDPOINT", "no scheme, and OTLP over HTTP needs a URL", "Fix: OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318"]),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "127.0.0.1:4317", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}, ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTLP over HTTP (traces) needs a URL"]),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:99999"}, ["OTEL_EXPORTER_OTLP_ENDPOINT", "bad port"]),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:99999"}, ["OTEL_EXPORTER_OTLP_ENDPOINT", "bad port"]),
        ({"OTEL_EXPORTER_OTLP_HEADERS": "api-key"}, ["OTEL_EXPORTER_OTLP_HEADERS", "'api-key' is not key=value", "Example:"]),
        ({"OTEL_TRACES_SAMPLER_ARG": "1.5"}, ["OTEL_TRACES_SAMPLER_ARG", "above the maximum 1.0", "OTEL_TRACES_SAMPLER_ARG=0.25"]),
        ({"OTEL_TRACES_SAMPLER": "sometimes"}, ["OTEL_TRACES_SAMPLER", "not one of", "parentbased_traceidratio"]),
        ({"OTEL_SDK_DISABLED": "maybe"}, ["OTEL_SDK_DISABLED", "not a boolean"]),
        ({"OTEL_TRACES_EXPORTER": "none,console"}, ["OTEL_TRACES_EXPORTER", "'none' cannot be combined"]),
    ],
)
def test_bad_values_name_the_variable_and_a_valid_example(env, names_in_message, caplog):
    # Strict mode (CI, staging): the bad variable stops start-up with the message.
    strict = {**env, "OTEL_MONITORING_STRICT": "true"}
    with pytest.raises(ConfigError) as caught:
        build_exporters(load_settings(environ=strict))
    for text in names_in_message:
        assert text in str(caught.value)
    # Otherwise the same message is logged once and the pipeline is built anyway.
    with caplog.at_level(logging.ERROR, logger="otel_monitoring"):
        build_exporters(load_settings(environ=env))
        build_exporters(load_settings(environ=env))
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(logged) == 1, logged
    for text in names_in_message:
        assert text in logged[0]


def test_grpc_takes_host_port_without_scheme_as_the_sdk_does():
    for endpoint in ("127.0.0.1:4317", "localhost:4317", "collector.internal", "otel_collector:4317", "[::1]:4317"):
        settings = load_settings(environ={"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_MONITORING_STRICT": "true"})
        assert otlp_endpoint(settings, "traces") == ("grpc", endpoint)
    both = load_settings(environ={"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "127.0.0.1:4317",
                                  "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf", "OTEL_MONITORING_STRICT": "true"})
    assert otlp_endpoint(both, "traces") == ("grpc", "127.0.0.1:4317")  # metrics do not use it
    with pytest.raises(ConfigError, match=r"configure\(endpoint=\.\.\.\): '127.0.0.1:4318' has no scheme.*"
                                          r"Fix: endpoint='http://127.0.0.1:4318'"):
        load_settings({"endpoint": "127.0.0.1:4318", "protocol": "http/protobuf"}, environ={})


def test_bad_argument_names_the_argument():
    with pytest.raises(ConfigError, match=r"configure\(sampler_arg=\.\.\.\).*below the minimum"):
        load_settings({"sampler_arg": -0.1}, environ={})
    with pytest.raises(ConfigError, match="unknown argument.*servce_name"):
        load_settings({"servce_name": "x"}, environ={})


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere; checked below with a file in the way")
def test_unwritable_file_directory_is_named(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    with pytest.raises(ConfigError, match="OTEL_MONITORING_FILE_DIR"):
        build_exporters(load_settings(environ={"OTEL_MONITORING_FILE_DIR": str(locked / "sub"),
                                               "OTEL_MONITORING_STRICT": "true"}))


def test_file_directory_that_cannot_be_created_is_named(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigError) as caught:
        build_exporters(load_settings({"file_dir": str(blocker / "telemetry")}, environ={}))
    message = str(caught.value)
    assert "configure(file_dir=...)" in message and "cannot create" in message and "e.g." in message


def test_configuration_reference_is_in_step_with_the_code():
    with open(os.path.join(REPO, "docs", "configuration.md"), encoding="utf-8") as handle:
        assert handle.read() == markdown_table(), "regenerate: python -m otel_monitoring.config > docs/configuration.md"


def test_every_option_has_a_documented_valid_example():
    for option in OPTIONS:
        assert option.doc and option.example, option.name
        if option.env:  # the example parses as the variable's own value
            load_settings(environ={option.env: option.example})


def test_every_package_directory_is_listed_for_installation():
    import tomllib

    with open(os.path.join(REPO, "pyproject.toml"), "rb") as handle:
        listed = set(tomllib.load(handle)["tool"]["setuptools"]["packages"])
    found = set()
    # Every directory: a package, or a directory of data files, which setuptools warns it would
    # ignore unless listed (then the wheel would depend on a glob of its parent to carry them).
    for top, name in (("otel_monitoring", "otel_monitoring"), ("collector-config", "otel_monitoring.stack.collector_config")):
        for root, dirs, _files in os.walk(os.path.join(REPO, top)):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            relative = os.path.relpath(root, os.path.join(REPO, top))
            found.add(name if relative == "." else name + "." + relative.replace(os.sep, "."))
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    # Everything ships under otel_monitoring (the examples too): one top-level package.
    assert {name.split(".")[0] for name in listed} == {"otel_monitoring"}


def test_cli_version_and_doctor_report_an_unreachable_endpoint():
    from support import clean_env, free_port

    exe = os.path.join(os.path.dirname(sys.executable), "otel-monitoring")
    version = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("otel-monitoring ")
    port = free_port()
    env = clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{port}")
    doctor = subprocess.run([exe, "doctor", "--timeout", "1"], capture_output=True, text=True, env=env, timeout=60)
    assert doctor.returncode == 1
    assert f"http://127.0.0.1:{port} is not reachable" in doctor.stdout
    assert "otel-monitoring stack up" in doctor.stdout
    assert "(env OTEL_EXPORTER_OTLP_ENDPOINT)" in doctor.stdout


def test_doctor_says_every_setting_is_at_its_default_instead_of_an_empty_header(tmp_path):
    from support import clean_env

    exe = os.path.join(os.path.dirname(sys.executable), "otel-monitoring")
    doctor = subprocess.run([exe, "doctor"], capture_output=True, text=True, env=clean_env(), timeout=60,
                            cwd=tmp_path)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    lines = doctor.stdout.splitlines()
    header = lines.index("Configuration (argument > environment > default):")
    assert lines[header + 1] == ("  every setting is at its default (list them with "
                                 "`otel-monitoring doctor --all`)"), doctor.stdout
    # One setting given: it is listed, and the line is not.
    given = subprocess.run([exe, "doctor"], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                           env=clean_env(OTEL_SERVICE_NAME="trading-bot"))
    assert "every setting is at its default" not in given.stdout, given.stdout
    assert "trading-bot" in given.stdout and "(env OTEL_SERVICE_NAME)" in given.stdout, given.stdout


APP_SPAN = """
import otel_monitoring
otel_monitoring.configure(service_name="tls-check", exporter="otlp", system_metrics=False, alert_rules="none")
from opentelemetry import trace
with trace.get_tracer("app").start_as_current_span("work"):
    pass
trace.get_tracer_provider().force_flush()
"""


def test_doctor_checks_a_grpc_endpoint_without_scheme_and_says_it_means_tls(tmp_path):
    """host:port means TLS for gRPC: against the real collector (no TLS) doctor said "All good." while
    every export failed. It now makes the TLS handshake the exporter would make and names the fix;
    against a TLS server it says OK when the exporter trusts the certificate."""
    import socket
    import ssl
    import threading

    from stackprocs import AGENT_CONFIG, start_collector
    from support import clean_env

    exe = os.path.join(os.path.dirname(sys.executable), "otel-monitoring")
    collector = start_collector(AGENT_CONFIG, tmp_path / "collector")
    try:
        endpoint = collector.otlp_grpc_endpoint.split("://", 1)[1]
        doctor = subprocess.run([exe, "doctor"], capture_output=True, text=True, timeout=60,
                                env=clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint))
        assert doctor.returncode == 1, doctor.stdout
        assert f"PROBLEM: grpc endpoint {endpoint} accepts connections but does not answer TLS" in doctor.stdout
        assert f"use http://{endpoint} or set OTEL_EXPORTER_OTLP_INSECURE=true" in doctor.stdout
        assert "All good" not in doctor.stdout and doctor.stderr == ""        # no gRPC C-library lines
        for fixed in ({"OTEL_EXPORTER_OTLP_INSECURE": "true"}, {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{endpoint}"}):
            plain = subprocess.run([exe, "doctor"], capture_output=True, text=True, timeout=60,
                                   env=clean_env(**{"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, **fixed}))
            assert plain.returncode == 0 and "All good." in plain.stdout, plain.stdout
            assert "accepts connections\n" in plain.stdout and "PROBLEM" not in plain.stdout
        # The app's own warning names the TLS mismatch, not "Is the collector running?".
        app = subprocess.run([sys.executable, "-c", APP_SPAN], capture_output=True, text=True, timeout=120,
                             env=clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_EXPORTER_OTLP_TIMEOUT="3",
                                           PYTHONPATH=os.environ.get("PYTHONPATH", "")))
        assert app.returncode == 0, app.stderr
        warning = next(line for line in app.stderr.splitlines() if "cannot deliver telemetry" in line)
        assert "WRONG_VERSION_NUMBER" in warning and "Is the collector running?" not in warning, warning
        assert (f"answers without TLS while the exporter connects with TLS (host:port without a scheme, for gRPC, "
                f"means TLS): for a collector without TLS, use http://{endpoint} or set "
                "OTEL_EXPORTER_OTLP_INSECURE=true") in warning, warning
    finally:
        collector.stop()

    # A TLS server with a self-signed certificate for 127.0.0.1.
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen(8)
        endpoint = f"127.0.0.1:{listening.getsockname()[1]}"

        def serve() -> None:
            while True:
                try:
                    connection, _ = listening.accept()
                except OSError:
                    return
                try:
                    with context.wrap_socket(connection, server_side=True) as tls:
                        tls.recv(1)
                except (OSError, ssl.SSLError):
                    pass

        threading.Thread(target=serve, daemon=True).start()
        trusted = subprocess.run([exe, "doctor"], capture_output=True, text=True, timeout=60,
                                 env=clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_EXPORTER_OTLP_CERTIFICATE=str(cert)))
        assert trusted.returncode == 0, trusted.stdout
        assert f"OK: grpc endpoint {endpoint} accepts connections and completes a TLS handshake" in trusted.stdout
        untrusted = subprocess.run([exe, "doctor"], capture_output=True, text=True, timeout=60,
                                   env=clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint))
        assert untrusted.returncode == 1, untrusted.stdout
        assert "answers TLS with a certificate the exporter does not trust" in untrusted.stdout
        assert "OTEL_EXPORTER_OTLP_CERTIFICATE" in untrusted.stdout


def test_secrets_are_masked_in_doctor_and_repr():
    from support import clean_env

    env = clean_env(OTEL_EXPORTER_OTLP_HEADERS="authorization=Bearer%20s3cr3t-token",
                    OTEL_MONITORING_ALERT_SMTP_PASSWORD="hunter2-password",
                    OTEL_MONITORING_ALERT_SLACK_WEBHOOK_URL="https://hooks.slack.com/services/T0/B0/xyzsecret",
                    OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
    exe = os.path.join(os.path.dirname(sys.executable), "otel-monitoring")
    doctor = subprocess.run([exe, "doctor"], capture_output=True, text=True, env=env, timeout=60)
    assert "headers" in doctor.stdout and "authorization" in doctor.stdout
    for secret in ("s3cr3t-token", "hunter2-password", "xyzsecret"):
        assert secret not in doctor.stdout
        assert secret not in repr(load_settings(environ=env))
