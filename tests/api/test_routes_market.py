"""Market data and health routes against real PostgreSQL and Redis."""

from __future__ import annotations

from tests.api.conftest import Api, Desk


def test_ticker_serves_the_cached_quote_with_its_staleness(api: Api, desk: Desk) -> None:
    # Given a fresh BTC/USDT quote in Redis
    quote = desk.quotes.get_quote("binance", "BTC/USDT")
    assert quote is not None
    # When the ticker is asked for with the symbol URL-encoded
    reply = api.get("/v1/data/ticker/BTC%2FUSDT?venue=binance")
    # Then it is the cached quote, not stale
    assert reply.status == 200, reply.body
    assert reply.body["bid"] == str(quote.bid)
    assert reply.body["stale"] is False
    assert reply.body["spread_bps"] > 0


def test_ticker_of_an_uncached_symbol_is_a_404_in_the_error_shape(api: Api, desk: Desk) -> None:
    reply = api.get("/v1/data/ticker/ETH%2FUSDT")
    assert reply.status == 404
    assert set(reply.body) == {"code", "message", "details"}
    assert reply.body["code"] == "not_found"


def test_historical_pages_through_stored_bars_with_a_cursor(api: Api, desk: Desk) -> None:
    # Given 420 stored daily bars; When they are read 100 at a time
    path = "/v1/data/historical/BTC%2FUSDT?timeframe=1d&start=2010-01-01T00:00:00Z&limit=100"
    seen: list[str] = []
    reply = api.get(path)
    while True:
        assert reply.status == 200, reply.body
        seen.extend(bar["ts"] for bar in reply.body["bars"])
        cursor = reply.body["next_cursor"]
        if cursor is None:
            break
        reply = api.get(f"{path}&cursor={cursor}")
    # Then every bar comes once, in order
    assert len(seen) == 420
    assert seen == sorted(set(seen))


def test_historical_rejects_a_bad_timeframe_with_the_reason(api: Api, desk: Desk) -> None:
    reply = api.get("/v1/data/historical/BTC%2FUSDT?timeframe=7m")
    assert reply.status == 422
    assert reply.body["code"] == "validation_error"
    assert any("timeframe" in d["field"] for d in reply.body["details"])


def test_orderbook_is_trimmed_to_the_depth_asked(api: Api, desk: Desk) -> None:
    reply = api.get("/v1/data/orderbook/BTC%2FUSDT?depth=3")
    assert reply.status == 200, reply.body
    assert len(reply.body["bids"]) == 3 and len(reply.body["asks"]) == 3


def test_every_route_but_health_needs_a_caller(api: Api, desk: Desk) -> None:
    # Given no claims; When a protected and the public route are called
    protected = api.get("/v1/data/ticker/BTC%2FUSDT", anonymous=True)
    malformed = api.post("/v1/orders/submit", {"nonsense": True}, anonymous=True)
    health = api.get("/v1/health", anonymous=True)
    # Then only health answers, and anonymous malformed requests are 401 before validation
    assert protected.status == 401 and protected.body["code"] == "unauthorized"
    assert malformed.status == 401
    assert health.status == 200 and health.body["checks"] == {"postgres": True, "redis": True}
