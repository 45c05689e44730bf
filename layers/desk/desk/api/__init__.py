"""The desk's HTTP API (API Gateway HTTP API → one Lambda function running a Powertools resolver).

:mod:`desk.api.app` holds the resolver; ``functions/api/handler.py`` serves it in AWS and
:mod:`desk.local.api_server` on 127.0.0.1 for development.
"""
