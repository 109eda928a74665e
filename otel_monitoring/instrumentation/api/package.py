"""What the API instrumentor turns on: any of these libraries (the contrib ``instruments-any`` convention)."""

_instruments = ()
_instruments_any = ("fastapi >= 0.92", "requests >= 2.0", "httpx >= 0.18.0", "httpx2 >= 2.0.0", "aiohttp >= 3.0")
_supports_metrics = True
