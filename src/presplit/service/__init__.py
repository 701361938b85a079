"""presplit as a service: the control loop with an HTTP API, Prometheus metrics and a live dashboard.

``presplit serve`` (:mod:`presplit.cli.serve_cmd`) runs :func:`presplit.service.app.create_app`
under uvicorn; see ``docs/service.md``.
"""
