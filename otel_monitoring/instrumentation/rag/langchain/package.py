"""What the langchain instrumentor instruments (the contrib ``package.py`` convention)."""

_instruments = ("langchain-core >= 0.3",)
_supports_metrics = True
