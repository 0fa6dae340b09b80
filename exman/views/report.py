"""``exman report``: the views of a root's runs in one self-contained HTML file.

Data, scripts (plotly.js included) and styles are inside the file: it opens
offline, in any browser, and can be mailed or copied with the runs.
"""

from __future__ import annotations

import os
import pathlib

from ..index import Index
from ..record.files import atomic_write
from ..record.store import Root, StrPath
from .data import payload
from .page import render

__all__ = ["report"]


def report(
    root: StrPath | Root,
    output: StrPath = "report.html",
    *,
    query: str | None = None,
    marked: str | None = None,
    failed: bool = True,
) -> pathlib.Path:
    """Write the report of the runs of ``root`` to ``output``; returns its path.

    :param query: only the runs this pandas query keeps (as ``exman ls``).
    :param marked: only the runs marked under this key.
    :param failed: also the failed runs (in ``fails/``).
    :raises ExmanError: not a root, a bad query, plotly missing.
    :raises MarkNotFound: no mark ``marked``.
    """
    index = Index(root.path if isinstance(root, Root) else root)
    data = payload(index, source=marked, query=query, failed=failed)
    html = render(data)
    path = pathlib.Path(os.path.abspath(output))
    atomic_write(path, html)
    return path
