"""numba kernels: contiguous float64 arrays in, arrays out, no pandas. Names end in ``_nb``.

Kernels are compiled with ``cache=True`` so that a build step (or the first run) can write the
machine code next to the package; see ``quant._kernels._jit`` for where that cache goes.
"""
