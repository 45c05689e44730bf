"""The paper venue: an in-memory :class:`desk.ports.Venue` filling against replayed quotes and books.

Files as in every adapter: ``client`` (the port), ``fills`` (the fill model, from :mod:`quant.costs`),
``config``. It raises :mod:`desk.venues.errors` directly, so it has no ``errors`` or ``mapping`` module.
"""

from __future__ import annotations

from desk.venues.paper.client import PaperVenue
from desk.venues.paper.config import ImpactModel, PaperConfig

__all__ = ["ImpactModel", "PaperConfig", "PaperVenue"]
