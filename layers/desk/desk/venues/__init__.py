"""Venue adapters (ccxt, alpaca, paper) implementing :class:`desk.ports.Venue`.

Import the adapter you need from its subpackage (``desk.venues.ccxt``); this package imports none of
them, so a function that trades on Alpaca never loads ccxt. :mod:`desk.venues.errors` is shared.
"""

from __future__ import annotations
