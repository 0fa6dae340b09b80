"""The page every view lives on: one HTML file from the package's templates.

``static/page.html``, ``page.css`` and ``page.js`` ship in the package;
plotly.js comes from the ``plotly`` package's own ``plotly.min.js`` (nothing
is downloaded, nothing is built). :func:`render` puts them together: inline
for the report, or as links to the live server's ``static/`` files.
"""

from __future__ import annotations

import pathlib
import re
from typing import Any

from ..record.store import ExmanError
from .data import dumps

__all__ = ["STATIC", "plotly_js", "render", "static_file"]

STATIC = pathlib.Path(__file__).resolve().parent / "static"
#: the files the live server hands out under static/
STATIC_FILES = ("page.js", "page.css", "plotly.min.js")
_CLOSE = re.compile(r"</(script|style)", re.IGNORECASE)


def plotly_js() -> pathlib.Path:
    """The ``plotly.min.js`` bundled in the ``plotly`` package.

    :raises ExmanError: plotly is not installed (``pip install 'exman[ui]'``).
    """
    # found, not imported: importing plotly costs a second and is not needed
    import importlib.util

    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise ExmanError("the views need plotly: pip install 'exman[ui]'")
    folder = pathlib.Path(next(iter(spec.submodule_search_locations)))
    path = folder / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise ExmanError(f"the plotly package in {folder} has no {path.name}")
    return path


def static_file(name: str) -> pathlib.Path:
    """One of :data:`STATIC_FILES` by name (anything else is refused)."""
    if name not in STATIC_FILES:
        raise ExmanError(f"no static file {name!r}")
    return plotly_js() if name == "plotly.min.js" else STATIC / name


def _inline(text: str) -> str:
    """Script or style text that cannot end its element early."""
    return _CLOSE.sub(lambda m: "<\\/" + m.group(1), text)


def render(
    data: dict[str, Any] | None, *, live: bool = False, poll_ms: int = 2000
) -> str:
    """The page as HTML text.

    :param data: the payload to show (:func:`exman.views.data.payload`),
        inlined with everything the page needs: a self-contained report.
        None: a live page that loads its scripts from ``static/`` and its
        data from ``api/payload``.
    :param live: the page polls the server for new runs.
    :param poll_ms: how often it does.
    """
    html = (STATIC / "page.html").read_text(encoding="utf-8")
    config = dumps({"live": live, "poll": poll_ms})
    if data is None:
        style = '<link rel="stylesheet" href="static/page.css">'
        scripts = (
            '<script src="static/page.js"></script>\n'
            '<script src="static/plotly.min.js"></script>'
        )
        text = curves = details = ""
    else:
        css = (STATIC / "page.css").read_text(encoding="utf-8")
        style = f"<style>\n{_inline(css)}</style>"
        plotly = plotly_js().read_text(encoding="utf-8")
        page = (STATIC / "page.js").read_text(encoding="utf-8")
        # the page's own script first: the table is drawn while the browser
        # still reads plotly.js, which only the plots need
        scripts = (
            f"<script>{_inline(page)}</script>\n<script>{_inline(plotly)}</script>"
        )
        rest = {k: v for k, v in data.items() if k not in ("curves", "details")}
        text = dumps(rest)
        curves = dumps(data.get("curves", {}))
        details = dumps(data.get("details", {}))
    # each marker once, the data last: escaped JSON holds no "<" to match
    for marker, value in (
        ("<!--exman:style-->", style),
        ("<!--exman:config-->", config),
        ("<!--exman:scripts-->", scripts),
        ("<!--exman:data-->", text),
        ("<!--exman:curves-->", curves),
        ("<!--exman:details-->", details),
    ):
        head, sep, tail = html.partition(marker)
        if not sep:
            raise ExmanError(f"{STATIC / 'page.html'} has no {marker}")
        html = head + value + tail
    return html
