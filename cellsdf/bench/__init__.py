"""``cellsdf bench``: speed rows, each our way against the plain way on the same input in the same run.

Modules: ``row`` (:class:`Row`, one line of the table and of ``bench.json``), ``measure`` (timing with peak
memory, fresh processes), one module per area (``prepare``: simulate, signed distance and prepare;
``descriptors``; ``training``; ``decode``; ``lift``; ``end_to_end``: generate and benchmark commands) and
``suite`` (:func:`~cellsdf.bench.suite.bench_rows`, what ``cellsdf bench`` runs).

Only :class:`Row` is imported here: decode and compile rows spawn worker processes that import their
module, and those should not pay for every other area's imports.
"""

from cellsdf.bench.row import Row

__all__ = ["Row"]
