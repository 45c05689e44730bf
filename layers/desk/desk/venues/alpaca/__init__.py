"""Alpaca adapter (US equities): :class:`AlpacaVenue` implements :class:`desk.ports.Venue` over alpaca-py.

Files as in every adapter: ``client`` (the port), ``mapping`` (Alpaca payloads → domain types),
``errors`` (Alpaca failures → :mod:`desk.venues.errors`), ``config``.
"""

from __future__ import annotations

from desk.venues.alpaca.client import AlpacaVenue
from desk.venues.alpaca.config import AlpacaConfig

__all__ = ["AlpacaConfig", "AlpacaVenue"]
