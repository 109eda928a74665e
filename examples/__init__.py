"""Small, realistic applications that otel-monitoring instruments; `otel-monitoring demo` runs them.

Each module has ``demo(duration)``, which runs its workload for about ``duration`` seconds in the
current (already configured) process, and runs standalone as ``python examples/<name>.py``.
"""
