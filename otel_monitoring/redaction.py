"""Secrets scrubbed from telemetry before it leaves the process: the one list of secret names.

Three rules, applied to span attributes, span events, span status messages, log records (body and
attributes) and metric data point attributes, for every exporter (files, OTLP, console, the
snapshot directory):

- an attribute whose key names a secret (its last dot-separated part is one of
  ``SECRET_NAMES`` or ends with ``_<name>``, ``-`` counting as ``_``: ``db.password``,
  ``http.request.header.x-api-key``) has its value replaced by ``REDACTED``;
- in string values, a query or connection-string parameter with such a name keeps its name and
  loses its value (``?api_key=REDACTED&signature=REDACTED``, ``Password=REDACTED;``), URL userinfo
  becomes ``REDACTED:REDACTED@`` (what the URL semantic conventions ask for ``url.full``), and a
  bearer token becomes ``Bearer REDACTED``;
- nothing else: ``gen_ai.usage.input_tokens`` is a count, not a secret, and no
  semantic-convention key matches (a test walks every key the semconv package defines).

``OTEL_MONITORING_REDACT_NAMES`` adds names, ``OTEL_MONITORING_REDACT_KEEP`` removes some,
``OTEL_MONITORING_REDACTION=false`` turns scrubbing off. The agent collector redacts again with
the same patterns: ``python -m otel_monitoring.redaction`` rewrites its block in
``collector-config/agent.yaml`` from this module, and a test checks the two agree.
"""

from __future__ import annotations

import re
import sys
from typing import Any, Iterable, Mapping
from . import names as telemetry_names

__all__ = ["REDACTED", "SECRET_NAMES", "Redactor", "collector_block", "default_redactor"]

REDACTED = "REDACTED"

# Names of secrets, as attribute key parts and as query / connection-string parameter names.
# Compared case-insensitively, "-" and "_" alike. "key" and "sig" are parameter names only: as an
# attribute key part ("aws.s3.key", "messaging.message.key"...) they name no secret.
SECRET_NAMES: tuple[str, ...] = (
    "password", "passwd", "pwd", "passphrase", "secret", "client_secret", "api_key", "apikey",
    "access_key", "secret_key", "private_key", "access_token", "refresh_token", "id_token", "auth_token",
    "session_token", "security_token", "token", "authorization", "proxy_authorization", "cookie",
    "set_cookie", "signature", "credential", "credentials",
    # Personal financial identifiers: masked like secrets (docs/security.md).
    "account_id", "account_number", "iban", "card_number",
)
# Whole keys of our own trading namespace that hold an account identifier. (Not the last-part rule:
# "account.id" would also match the semantic conventions' cloud.account.id.)
SECRET_KEYS: tuple[str, ...] = (telemetry_names.TRADING_ACCOUNT_ID, telemetry_names.TRADING_ACCOUNT_NUMBER)
PARAMETER_ONLY_NAMES: tuple[str, ...] = ("key", "sig", "auth", "x_amz_signature", "x_amz_credential",
                                         "x_goog_signature", "awsaccesskeyid")

# Message content (prompts, completions, documents), deleted by the collector unless
# OTELCOL_REDACT_CONTENT=false; the SDK does not capture it unless content capture is on.
CONTENT_SPAN_KEYS = (r"^(gen_ai\.(prompt|completion|input\.messages|output\.messages|system_instructions|"
                     r"tool\.call\.arguments|tool\.call\.result)|gen_ai\.(prompt|completion)\..*|db\.query\.text|"
                     r"rag\.document\.content|rag\.query\.text)$")
CONTENT_EVENT_KEYS = r"^(gen_ai\..*(prompt|completion|messages|content).*|event\.content)$"


def _alternatives(names: Iterable[str]) -> str:
    parts = sorted({re.escape(name.lower()).replace("_", "[_-]") for name in names}, key=lambda p: (-len(p), p))
    return "|".join(parts)


def key_pattern(names: Iterable[str], keys: Iterable[str] = SECRET_KEYS) -> str:
    """The regular expression (Python and RE2 alike) of attribute keys that name a secret: the last
    dot-separated part is a name or ends with ``_name``, or the whole key is one of ``keys``."""
    whole = "|".join(re.escape(key) for key in keys)
    pattern = rf"(?:.*\.)?(?:[^.]*[_-])?(?:{_alternatives(names)})"
    return rf"(?i)^(?:{pattern}|{whole})$" if whole else rf"(?i)^{pattern}$"


def parameter_pattern(names: Iterable[str]) -> str:
    """``name=value`` in a query string or a ``k=v;`` connection string; group 1 the separator, 2 the name."""
    return rf"(?i)(^|[?&;\s,])({_alternatives(names)})=[^&;#\s,]*"


USERINFO_PATTERN = r"(?i)([a-z][a-z0-9+.-]*://)[^/?#@\s]+@"
BEARER_PATTERN = r"(?i)(bearer\s+)[a-z0-9._~+/=-]+"


class Redactor:
    """Decides and applies the scrubbing. Key decisions are cached (keys are few); values are
    looked at only when they contain ``=``, ``@`` or a bearer scheme, so most cost nothing."""

    def __init__(self, add: Iterable[str] = (), keep: Iterable[str] = ()):
        normalise = lambda name: name.strip().lower().replace("-", "_")  # noqa: E731 - a one-line helper local to this method
        keep_set = {normalise(n) for n in keep if n.strip()}
        extra = [normalise(n) for n in add if n.strip()]
        self.names = tuple(n for n in dict.fromkeys([*SECRET_NAMES, *extra]) if n not in keep_set)
        self.parameter_names = tuple(n for n in dict.fromkeys([*self.names, *PARAMETER_ONLY_NAMES])
                                     if n not in keep_set)
        self._key = re.compile(key_pattern(self.names)) if self.names else None
        self._parameter = re.compile(parameter_pattern(self.parameter_names)) if self.parameter_names else None
        self._userinfo = re.compile(USERINFO_PATTERN)
        self._bearer = re.compile(BEARER_PATTERN)
        self._keys: dict[str, bool] = {}

    def is_secret_key(self, key: str) -> bool:
        found = self._keys.get(key)
        if found is None:
            found = bool(self._key and self._key.match(key))
            if len(self._keys) < 10_000:
                self._keys[key] = found
        return found

    def scrub_text(self, text: str) -> str:
        if "=" in text and self._parameter is not None:
            text = self._parameter.sub(rf"\1\2={REDACTED}", text)
        if "@" in text and "://" in text:
            text = self._userinfo.sub(rf"\1{REDACTED}:{REDACTED}@", text)
        if "earer" in text:
            text = self._bearer.sub(rf"\1{REDACTED}", text)
        return text

    def scrub_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.scrub_text(value)
        if isinstance(value, (list, tuple)) and any(isinstance(v, str) for v in value):
            scrubbed = [self.scrub_text(v) if isinstance(v, str) else v for v in value]
            return value if scrubbed == list(value) else type(value)(scrubbed)
        return value

    def scrub_attributes(self, attributes: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """The attributes with secrets replaced, or None when nothing had to change (the common case)."""
        if not attributes:
            return None
        changed: dict[str, Any] | None = None
        # BoundedAttributes iterates through the Mapping ABC; its plain dict is several times faster
        for key, value in getattr(attributes, "_dict", attributes).items():
            if self.is_secret_key(key):
                new = REDACTED
            else:
                new = self.scrub_value(value)
                if new is value or new == value:
                    continue
            if changed is None:
                changed = dict(attributes)
            changed[key] = new
        return changed


_default: Redactor | None = None


def default_redactor() -> Redactor:
    global _default
    if _default is None:
        _default = Redactor()
    return _default


# --- the collector's second layer, generated from the lists above ---

BEGIN_MARKER = "  # BEGIN redaction (generated by `python -m otel_monitoring.redaction`; do not edit by hand)"
END_MARKER = "  # END redaction"


def _go(pattern: str) -> str:
    """A pattern as a double-quoted OTTL string inside the collector's YAML."""
    return pattern.replace("\\", "\\\\").replace('"', '\\"')


def collector_block(redactor: Redactor | None = None) -> str:
    """The agent collector's redaction processors (attributes/redact, transform/redact) as YAML text."""
    redactor = redactor or Redactor()
    key = key_pattern(redactor.names)
    parameter = parameter_pattern(redactor.parameter_names)
    # In the collector's config "$" starts an environment reference: "$$" is a literal "$".
    values = [
        f'replace_all_patterns(attributes, "value", "{_go(parameter)}", "$${{1}}$${{2}}={REDACTED}")',
        f'replace_all_patterns(attributes, "value", "{_go(USERINFO_PATTERN)}", "$${{1}}{REDACTED}:{REDACTED}@")',
        f'replace_all_patterns(attributes, "value", "{_go(BEARER_PATTERN)}", "$${{1}}{REDACTED}")',
    ]
    body = [
        f'replace_pattern(body, "{_go(parameter)}", "$${{1}}$${{2}}={REDACTED}")',
        f'replace_pattern(body, "{_go(USERINFO_PATTERN)}", "$${{1}}{REDACTED}:{REDACTED}@")',
        f'replace_pattern(body, "{_go(BEARER_PATTERN)}", "$${{1}}{REDACTED}")',
    ]
    delete_resource = f'delete_matching_keys(attributes, "{_go(key)}")'
    content_gate = 'where "${env:OTELCOL_REDACT_CONTENT:-true}" == "true"'

    def statements(items: list[str], indent: int) -> list[str]:
        return [" " * indent + f"- {item}" for item in items]

    lines = [
        BEGIN_MARKER,
        "  # Redaction, second line (the SDK scrubs first, from the same list in otel_monitoring/redaction.py):",
        "  # attributes whose KEY names a secret are deleted, on spans, span events, metric data points and",
        "  # log records; semantic-convention keys such as gen_ai.usage.input_tokens never match.",
        "  attributes/redact:",
        "    actions:",
        f"      - pattern: {key}",
        "        action: delete",
        "",
        "  # VALUES carrying secrets under innocent keys (query and connection-string parameters, URL",
        "  # userinfo, bearer tokens), resource attributes, and message content (prompts, completions,",
        "  # documents) unless OTELCOL_REDACT_CONTENT=false.",
        "  transform/redact:",
        "    error_mode: ignore",
        "    trace_statements:",
        "      - context: resource",
        "        statements:",
        *statements([delete_resource], 10),
        "      - context: span",
        "        statements:",
        *statements(values, 10),
        *statements([f'delete_matching_keys(attributes, "{_go(CONTENT_SPAN_KEYS)}") {content_gate}'], 10),
        "      - context: spanevent",
        "        statements:",
        *statements(values, 10),
        *statements([f'delete_matching_keys(attributes, "{_go(CONTENT_EVENT_KEYS)}") {content_gate}'], 10),
        "    metric_statements:",
        "      - context: resource",
        "        statements:",
        *statements([delete_resource], 10),
        "      - context: datapoint",
        "        statements:",
        *statements(values, 10),
        "    log_statements:",
        "      - context: resource",
        "        statements:",
        *statements([delete_resource], 10),
        "      - context: log",
        "        statements:",
        *statements(values + body, 10),
        END_MARKER,
    ]
    return "\n".join(lines) + "\n"


def replace_block(config_text: str, block: str) -> str:
    """``config_text`` with the text between the markers (markers included) replaced by ``block``."""
    start = config_text.index(BEGIN_MARKER)
    end = config_text.index(END_MARKER, start) + len(END_MARKER) + 1
    return config_text[:start] + block + config_text[end:]


def main(argv: list[str]) -> int:
    """Rewrite the redaction block of the given collector configs (default collector-config/agent.yaml)."""
    paths = argv or ["collector-config/agent.yaml"]
    block = collector_block()
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        updated = replace_block(text, block)
        if updated != text:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(updated)
            print(f"updated {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
