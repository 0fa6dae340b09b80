"""Recording a run: the root's folders, its lock, params.yaml, run.json, the
life of the run's process, its metrics and results, and its git state.

Nothing here imports from :mod:`exman.look`, :mod:`exman.views`,
:mod:`exman.commands` or :mod:`exman.sweep`; this is the code on the path
of ``parse_args()``, so it imports nothing heavy.
"""

from .lazyurl import import_pathlib

# first, before any module here imports pathlib: see exman.record.lazyurl
import_pathlib()
