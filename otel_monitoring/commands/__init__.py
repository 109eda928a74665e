"""Subcommands of the otel-monitoring CLI, one module each."""
