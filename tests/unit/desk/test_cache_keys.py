"""desk.cache.keys: one versioned key layout, unambiguous per (venue, symbol) and per bucket."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from desk.cache import keys

VENUES = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=":"), min_size=1, max_size=128
)
SYMBOLS = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=64)


def test_keys_carry_the_version_prefix_and_kind() -> None:
    # Given a venue and a symbol in ccxt swap notation (with a colon)
    venue, symbol = "binance", "ETH/USDT:USDT"
    # When the keys are built, Then each reads prefix, version, kind, venue, symbol
    assert keys.quote_key(venue, symbol) == "ld:v1:quote:binance:ETH/USDT:USDT"
    assert keys.book_key(venue, symbol) == "ld:v1:book:binance:ETH/USDT:USDT"
    assert keys.rate_limit_key(keys.bucket_id("binance", "key-1")) == "ld:v1:rl:binance:key-1"
    assert keys.PREFIX == "ld:v1"


def test_quote_and_book_keys_never_collide() -> None:
    # Given the same venue and symbol, When both keys are built, Then they differ (different value layouts)
    assert keys.quote_key("kraken", "BTC/USD") != keys.book_key("kraken", "BTC/USD")


@given(VENUES, SYMBOLS, VENUES, SYMBOLS)
def test_distinct_pairs_get_distinct_keys(venue_a: str, symbol_a: str, venue_b: str, symbol_b: str) -> None:
    # Given any two (venue, symbol) pairs whose venue has no colon
    # When their quote keys are built, Then the keys are equal exactly when the pairs are
    same_key = keys.quote_key(venue_a, symbol_a) == keys.quote_key(venue_b, symbol_b)
    assert same_key == ((venue_a, symbol_a) == (venue_b, symbol_b))


@pytest.mark.parametrize(
    ("venue", "symbol"),
    [("bin:ance", "BTC/USDT"), ("", "BTC/USDT"), ("binance", ""), ("bin ance", "BTC/USDT"), ("binance", "BTC USDT")],
)
def test_ambiguous_or_empty_parts_are_refused(venue: str, symbol: str) -> None:
    # Given a venue with a colon, an empty part or a space, When a key is built, Then it is refused
    with pytest.raises(ValueError, match="must"):
        keys.quote_key(venue, symbol)
    with pytest.raises(ValueError, match="must"):
        keys.book_key(venue, symbol)


def test_bucket_venue_may_not_contain_a_colon() -> None:
    # Given a venue with a colon, When a bucket id is built, Then it is refused (it would alias another key id)
    with pytest.raises(ValueError, match="':'"):
        keys.bucket_id("a:b", "c")
    # And a key id may contain one, because it comes last
    assert keys.bucket_id("a", "b:c") == "a:b:c"


def test_non_ascii_parts_are_refused() -> None:
    # Given a symbol with a non-ASCII character, When a key is built, Then it is refused
    with pytest.raises(ValueError, match="printable ASCII"):
        keys.quote_key("binance", "BTC/USDŦ")
