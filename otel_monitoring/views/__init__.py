"""Operator views: what a person looks at. Data gathering (snapshot and Prometheus sources, the
overview model, report data, the Jaeger client) is kept apart from rendering (the rich dashboard,
the HTML report, the trace tree), one module each."""
