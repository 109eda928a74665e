"""What the ccxt instrumentor instruments (the contrib ``package.py`` convention)."""

_instruments = ("ccxt >= 4.3",)
_supports_metrics = True
