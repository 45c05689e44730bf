"""Lambda Desk's quant layer: pure maths over numpy arrays and pandas objects.

Imports only numpy, pandas, scipy, numba and the standard library: no AWS, no pydantic, no I/O,
no clock and no environment variables (a test enforces this). numba kernels live in
``quant._kernels`` (arrays in, arrays out, names ending in ``_nb``); the public functions beside
them accept numpy or pandas input, validate it, call the kernel and wrap the result back.
"""

__all__ = [
    "backtest",
    "backtest_grid",
    "correlation",
    "costs",
    "dcc",
    "execution",
    "garch",
    "indicators",
    "limits",
    "markov_switching",
    "metrics",
    "portfolio",
    "regime",
    "risk",
    "risk_backtest",
    "risk_stress",
    "routing",
    "signals",
    "walk_forward",
]
