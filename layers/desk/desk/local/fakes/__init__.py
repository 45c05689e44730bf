"""Fake venues on 127.0.0.1 for tests and the local demo: real clients, ground-truth ledgers, seeded faults."""

from __future__ import annotations

from desk.local.fakes.binance import FakeBinance, FakeMarket, Fault, FaultPlan, Ledger

__all__ = ["FakeBinance", "FakeMarket", "Fault", "FaultPlan", "Ledger"]
