"""What the chromadb instrumentor instruments (the contrib ``package.py`` convention)."""

_instruments = ("chromadb >= 1.0",)
_supports_metrics = True
