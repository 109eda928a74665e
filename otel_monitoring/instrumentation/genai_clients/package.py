"""What the GenAI clients bundle turns on: any of these libraries (the contrib ``instruments-any`` convention)."""

_instruments = ()
_instruments_any = ("openai >= 1.26.0",)
_supports_metrics = True
