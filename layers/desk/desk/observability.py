"""One place for Powertools' Logger, Tracer and Metrics, shared by every handler and the streamer.

Handlers import ``logger``, ``tracer`` and ``metrics`` from here and decorate with them; JSON logs
carry the envelope's correlation id (``logger.append_keys(correlation_id=...)``). The service name
and metrics namespace come from Powertools' own environment variables (``POWERTOOLS_SERVICE_NAME``,
``POWERTOOLS_METRICS_NAMESPACE``) that the stacks set per function; these defaults serve tests and
the local cloud, where the tracer is disabled (no X-Ray daemon).
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "lambda-desk")  # Powertools' own variable
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "LambdaDesk")

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE, disabled=os.environ.get("AWS_EXECUTION_ENV") is None)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

__all__ = ["logger", "metrics", "tracer"]
