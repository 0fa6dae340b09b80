"""``exman report`` and ``exman ui``: the views of the runs, in a browser.

Each command's parser (``add_<name>``) and its handler (``cmd_<name>``).
"""

from __future__ import annotations

import argparse

from ..record.store import Root
from .common import OK, Subparsers, add_command, err

__all__ = ["add_report", "add_ui", "cmd_report", "cmd_ui"]


def add_report(
    sub: Subparsers, parent: argparse.ArgumentParser
) -> argparse.ArgumentParser:
    p = add_command(
        sub,
        "report",
        cmd_report,
        "Write the views of the runs into one self-contained HTML file.",
        'exman report\nexman report -o sweep.html --query "lr > 0.01"\n'
        "exman report --marked best",
        parent,
        "The runs table, parallel coordinates, interest ~ parameter, curves, "
        "one run and two runs side by side, with the data, plotly.js and the "
        "styles inside the file: it opens offline in any browser. Failed runs "
        "are included. Needs the ui extra: pip install 'exman[ui]'.",
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        default="report.html",
        help="the file to write (default: report.html)",
    )
    p.add_argument(
        "-q", "--query", help="a pandas query: \"lr > 0.01 and model == 'b'\""
    )
    p.add_argument("-m", "--marked", metavar="KEY", help="only runs marked under KEY")
    return p


def cmd_report(args: argparse.Namespace, root: Root) -> int:
    from ..views.report import report

    path = report(root, args.output, query=args.query, marked=args.marked)
    print(f"wrote {path}")
    return OK


def add_ui(sub: Subparsers, parent: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p = add_command(
        sub,
        "ui",
        cmd_ui,
        "Serve the views of the runs live, in the browser.",
        "exman ui\nexman ui --port 9000\nexman ui --host 0.0.0.0 --token",
        parent,
        "The page of exman report, served from the root: new and finished runs "
        "appear while it is open and a running run's log is followed. Read-only. "
        "It listens on 127.0.0.1 unless --host says otherwise; any other "
        "address prints a warning and requires a token (made when --token "
        "gives none), passed in the printed address. Needs the ui extra: "
        "pip install 'exman[ui]'.",
    )
    p.add_argument(
        "--port", type=int, default=8765, help="the port to listen on (8765)"
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on (127.0.0.1; others require a token)",
    )
    p.add_argument(
        "--token",
        nargs="?",
        const="",
        default=None,
        metavar="TOKEN",
        help="require this token (a new one when none is given)",
    )
    p.add_argument(
        "--poll",
        type=int,
        default=2000,
        metavar="MS",
        help="how often the page looks for new runs, in milliseconds (2000)",
    )
    return p


def cmd_ui(args: argparse.Namespace, root: Root) -> int:
    from ..views.server import check_address, ui

    token = args.token or None
    if args.token == "":  # --token without a value: make one
        import secrets

        token = secrets.token_urlsafe(24)
    token, warning = check_address(args.host, token)
    if warning:
        err(f"warning: {warning}")
    host = f"[{args.host}]" if ":" in args.host else args.host
    query = f"?token={token}" if token else ""
    err(f"serving {root.path} at http://{host}:{args.port}/{query} (Ctrl-C stops)")
    ui(root.path, host=args.host, port=args.port, token=token, poll_ms=args.poll)
    return OK
