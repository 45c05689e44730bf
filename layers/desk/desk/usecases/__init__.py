"""Use cases: one module per job a handler does. Each receives its ports; none builds an adapter.

Modules are imported directly (``from desk.usecases.ingest import run_ingest``): this package
imports nothing itself, so a light function does not pay for the quant layer a heavy one needs.
"""
