"""The ccxt venue adapter (any ccxt exchange by id): client, mapping, errors, config."""

from __future__ import annotations

from desk.venues.ccxt.client import Acquire, CcxtVenue, build_exchange
from desk.venues.ccxt.config import CcxtVenueConfig

__all__ = ["Acquire", "CcxtVenue", "CcxtVenueConfig", "build_exchange"]
