"""Looking at runs: reading run folders into rows, the cache of parsed runs,
results and metrics, aggregates. :class:`exman.Index` is the face of it.

Imports from :mod:`exman.record` only.
"""
