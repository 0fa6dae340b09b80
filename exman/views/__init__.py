"""Views of runs: what the runs of a root give when grouped, tabulated, drawn.

:mod:`~exman.views.aggregate` groups runs by their parameters and
aggregates a value over repetitions with :mod:`~exman.views.stats`
(pandas and numpy only: any view can draw from it);
:mod:`~exman.views.tables` writes the aggregate as a LaTeX, Markdown or
CSV table and :mod:`~exman.views.plots` draws it with matplotlib, imported
only there. :class:`exman.Index` is the face of them.
"""
