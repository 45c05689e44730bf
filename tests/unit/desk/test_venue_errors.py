"""Venue errors: the two families, ccxt's hierarchy mapped onto them, Binance bodies refined."""

from __future__ import annotations

import pickle
from types import SimpleNamespace

import ccxt
import pytest

from desk.domain import errors as domain
from desk.venues.ccxt.errors import retry_after_seconds, translate, venue_code
from desk.venues.errors import (
    AmbiguousOrderState,
    AuthenticationFailed,
    DuplicateClientOrderId,
    InsufficientFunds,
    OrderNotFound,
    OrderRejected,
    PermanentVenueError,
    RateLimited,
    RetryableVenueError,
    UnknownSymbol,
    VenueTimeout,
    VenueUnavailable,
    classify_exception,
)


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (ccxt.RequestTimeout, VenueTimeout),
        (ccxt.NetworkError, VenueUnavailable),
        (ccxt.DDoSProtection, RateLimited),
        (ccxt.RateLimitExceeded, RateLimited),
        (ccxt.ExchangeNotAvailable, VenueUnavailable),
        (ccxt.OnMaintenance, VenueUnavailable),
        (ccxt.InvalidNonce, RetryableVenueError),
        (ccxt.InvalidOrder, OrderRejected),
        (ccxt.InsufficientFunds, InsufficientFunds),
        (ccxt.AuthenticationError, AuthenticationFailed),
        (ccxt.PermissionDenied, AuthenticationFailed),
        (ccxt.BadSymbol, UnknownSymbol),
        (ccxt.BadRequest, PermanentVenueError),
        (ccxt.OrderNotFound, OrderNotFound),
        (ccxt.DuplicateOrderId, DuplicateClientOrderId),
        (ccxt.ExchangeError, PermanentVenueError),
    ],
)
def test_ccxt_exceptions_map_to_the_most_specific_class(raised: type[Exception], expected: type[Exception]) -> None:
    # Given a ccxt exception, When classified
    error = classify_exception(raised("boom"), venue="binance", operation="create_order")
    # Then it is exactly the expected class, in the right family, naming venue and operation
    assert type(error) is expected
    assert error.retryable == issubclass(expected, RetryableVenueError)
    assert (error.venue, error.operation, error.message) == ("binance", "create_order", "boom")


def test_our_classes_are_the_domain_families_the_ports_promise() -> None:
    assert issubclass(RateLimited, domain.RetryableVenueError)
    assert issubclass(InsufficientFunds, domain.PermanentVenueError)
    assert issubclass(OrderNotFound, domain.OrderNotFound)
    assert issubclass(AmbiguousOrderState, domain.RetryableVenueError)
    assert RetryableVenueError.__name__ == domain.RetryableVenueError.__name__  # ASL matches by name


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (TimeoutError("t"), VenueTimeout),
        (TimeoutError("t"), VenueTimeout),
        (ConnectionResetError("r"), VenueUnavailable),
        (KeyError("bug"), PermanentVenueError),
        (domain.OrderNotFound("x"), OrderNotFound),
    ],
)
def test_non_ccxt_exceptions_are_classified_too(raised: Exception, expected: type[Exception]) -> None:
    assert type(classify_exception(raised)) is expected


def test_our_own_errors_pass_through_unchanged() -> None:
    original = InsufficientFunds("no money", venue="paper")
    assert classify_exception(original) is original


def test_errors_survive_pickling_with_their_fields() -> None:
    # Given a rate-limit error with a wait, When pickled and restored (Lambda / multiprocessing)
    data = pickle.dumps(RateLimited("slow down", venue="binance", operation="x", retry_after=2.5))
    error = pickle.loads(data)  # noqa: S301 - our own bytes
    # Then nothing is lost
    assert (type(error), error.retry_after, error.venue, str(error)) == (
        RateLimited,
        2.5,
        "binance",
        "binance x: slow down",
    )


def test_binance_duplicate_and_filter_bodies_are_refined() -> None:
    # Given ccxt's classes for Binance's -2010 duplicate and -1013 filter answers
    duplicate = ccxt.InvalidOrder('binance {"code": -2010, "msg": "Duplicate order sent."}')
    notional = ccxt.BadRequest('binance {"code": -1013, "msg": "Filter failure: NOTIONAL"}')
    # When translated, Then the duplicate is recognised as "already placed" and the filter as a rejection
    assert type(translate(duplicate, object(), venue="binance", operation="create_order")) is DuplicateClientOrderId
    rejected = translate(notional, object(), venue="binance", operation="create_order")
    assert type(rejected) is OrderRejected and rejected.code == "-1013"


def test_retry_after_is_read_from_the_last_response_headers() -> None:
    exchange = SimpleNamespace(last_response_headers={"Retry-After": "7", "Content-Type": "application/json"})
    error = translate(ccxt.DDoSProtection("binance 429"), exchange, venue="binance", operation="fetch_ticker")
    assert isinstance(error, RateLimited) and error.retry_after == 7.0


@pytest.mark.parametrize(
    ("headers", "expected"), [(None, None), ({}, None), ({"retry-after": "x"}, None), ({"RETRY-AFTER": "-2"}, 0.0)]
)
def test_retry_after_parsing_is_defensive(headers: dict[str, str] | None, expected: float | None) -> None:
    assert retry_after_seconds(headers) == expected


def test_venue_code_reads_json_bodies_only() -> None:
    assert venue_code(Exception('x {"code": -2013, "msg": "Order does not exist."}')) == (
        "-2013",
        "Order does not exist.",
    )
    assert venue_code(Exception("plain text")) == (None, None)
    assert venue_code(Exception("x {not json}")) == (None, None)
