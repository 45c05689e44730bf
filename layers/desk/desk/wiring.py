"""Where handlers get their concrete adapters: one cached factory per port.

Handlers call these and pass the results to a use case; use cases never import adapters. Each
factory builds its object on first use (not at import, so tests can set the environment first) and
caches it for the container's lifetime: one database connection, one Redis client, one venue
client per Lambda container. ``reset()`` clears them all (tests, the local cloud); ``install()`` pins
factories to given objects for a local run until the next ``reset()``.

Imports of the adapters are local to each factory so that a function loads only what it uses
(a zip function that never trades does not import ccxt).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import cache
from typing import Any

from desk.clock import SystemClock
from desk.settings import get_settings


@cache
def clock() -> Any:
    return SystemClock()


@cache
def store() -> Any:
    """PostgreSQL through one lazily opened connection per container (RDS Proxy in AWS)."""
    from desk.store import PostgresStore
    from desk.store.connection import LambdaConnection, SessionSettings

    settings = get_settings()
    session = SessionSettings(statement_timeout_ms=settings.database_statement_timeout_ms)
    return PostgresStore(LambdaConnection(settings.database_url, session, password=database_password()), clock=clock())


def database_password() -> Any:
    """``None`` locally (the URL says it all); in AWS a source of fresh RDS IAM auth tokens."""
    settings = get_settings()
    if not settings.database_iam_auth:
        return None
    from desk.aws.rds_auth import iam_auth_token_source

    return iam_auth_token_source(settings.database_url, settings.region)


@cache
def quote_cache() -> Any:
    """Redis quotes, books and the shared token-bucket limiter (ElastiCache over TLS in AWS)."""
    from desk.cache import RedisQuoteCache
    from desk.cache.ratelimit import BucketLimit

    settings = get_settings()
    limits = {
        name: BucketLimit(capacity=spec.rate_limit[0], refill_per_second=spec.rate_limit[1])
        for name, spec in settings.venue_specs().items()
        if spec.rate_limit is not None
    }
    return RedisQuoteCache(
        redis_client(),
        limits=limits,
        default_limit=BucketLimit(capacity=settings.rate_limit_capacity, refill_per_second=settings.rate_limit_refill),
        quote_ttl=timedelta(seconds=settings.quote_ttl_s),
    )


@cache
def redis_client() -> Any:
    """The shared Redis client (one per container) for callers that need more than the quote cache."""
    from desk.cache.client import get_client

    return get_client(get_settings().redis_url)


@cache
def gate_config() -> Any:
    """Pre-trade gate settings: the library defaults, with the configured universe as the allow-list."""
    from desk.domain.controls_config import GateConfig
    from desk.usecases.universe import parse_universe

    universe = parse_universe(get_settings().universe)
    return GateConfig(allowed_symbols=frozenset(s.symbol for s in universe.series()))


@cache
def venue(name: str) -> Any:
    """The venue adapter named in the settings' venue table (ccxt, alpaca), keys from Secrets Manager."""
    from desk.aws.secrets import secret_json

    spec = get_settings().venue_specs()[name]
    keys = secret_json(spec.credentials_id) if spec.credentials_id else {}
    if spec.kind == "alpaca":
        from desk.venues.alpaca import AlpacaConfig, AlpacaVenue

        config = AlpacaConfig(
            api_key=keys.get("api_key", ""),
            secret_key=keys.get("secret", ""),
            paper=spec.paper,
            trading_url=spec.base_url,
            data_url=spec.data_url,
            venue=name,
        )
        return AlpacaVenue(config, clock=clock())
    from desk.venues.ccxt import CcxtVenue, CcxtVenueConfig

    ccxt_config = CcxtVenueConfig(
        exchange_id=spec.exchange_id or name,
        api_key=keys.get("api_key"),
        secret=keys.get("secret"),
        password=keys.get("password"),
        sandbox=spec.sandbox,
        base_url=spec.base_url,
        venue=name,
        rate_limit_bucket=name,
        request_costs=spec.request_costs,
    )
    return CcxtVenue(ccxt_config, acquire=quote_cache().acquire, clock=clock())


def market_data(name: str) -> Any:
    """Market data comes from the venue adapter (the Venue port extends MarketData)."""
    return venue(name)


@cache
def event_bus() -> Any:
    from desk.aws.bus import EventBridgeBus

    settings = get_settings()
    return EventBridgeBus(bus_name=settings.event_bus_name, source=settings.event_source)


@cache
def execution_starter() -> Any:
    """Starts the order-placement state machine, one execution per plan id (idempotent on the name)."""
    from desk.aws.starter import StepFunctionsStarter

    return StepFunctionsStarter(get_settings().order_state_machine_arn)


@cache
def alerts() -> Any:
    """Operator alerts on the SNS topic (risk breaches, reconciliation drift, kill-switch latches)."""
    from desk.aws.alerts import SnsAlerts

    return SnsAlerts(get_settings().alerts_topic_arn)


@cache
def idempotency_persistence() -> Any:
    """Powertools' DynamoDB idempotency store: one table for every function, keyed per function."""
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    from desk.aws.clients import client

    return DynamoDBPersistenceLayer(table_name=get_settings().idempotency_table, boto3_client=client("dynamodb"))


@cache
def idempotency_config() -> Any:
    """Idempotency on the envelope id (``id``): a redelivered event returns the stored result."""
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

    from desk.topology import topology

    ttl = topology().defaults.idempotency_ttl_seconds
    return IdempotencyConfig(event_key_jmespath="id", raise_on_no_idempotency_key=True, expires_after_seconds=ttl)


FACTORIES = (
    clock,
    redis_client,
    gate_config,
    store,
    quote_cache,
    venue,
    event_bus,
    execution_starter,
    alerts,
    idempotency_persistence,
    idempotency_config,
)


PINNABLE = frozenset(f.__name__ for f in FACTORIES) | {"market_data"}
_pinned: dict[str, Any] = {}  # factory name -> the original it replaced


def install(**factories: Callable[..., Any]) -> None:
    """Pin factories to the given callables until :func:`reset` (the local cloud's replay venue and clock).

    ``install(market_data=lambda name: replay, clock=lambda: simulated)`` makes every handler that
    asks this module for a port get the given object, so a local run swaps adapters without the
    handlers knowing. Only the factories named in :data:`PINNABLE` can be pinned.
    """
    unknown = set(factories) - PINNABLE
    if unknown:
        raise ValueError(f"not a wiring factory: {', '.join(sorted(unknown))}")
    namespace = globals()
    for name, replacement in factories.items():
        _pinned.setdefault(name, namespace[name])
        namespace[name] = replacement


def reset() -> None:
    """Undo :func:`install` and clear every cached factory."""
    globals().update(_pinned)
    _pinned.clear()
    for factory in FACTORIES:
        factory.cache_clear()
