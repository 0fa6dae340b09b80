"""``.. exman-help:: [COMMAND]``: the live ``--help`` of the exman command.

The text comes from :func:`exman.cli.build_parser` when the docs are built,
so the reference cannot drift from the command. At the end of the build a
warning names every subcommand that no ``exman-help`` directive shows.
"""

from __future__ import annotations

from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)


def help_text(command: str | None = None) -> str:
    """``exman --help`` or ``exman COMMAND --help``, as the command prints it."""
    from exman.cli import build_parser, subcommands

    parser = build_parser()
    if command is None:
        return parser.format_help()
    commands = subcommands(parser)
    if command not in commands:
        raise ValueError(
            f"exman has no command {command!r}; it has {', '.join(commands)}"
        )
    return commands[command].format_help()


class ExmanHelp(SphinxDirective):
    """Render the help of ``exman`` (no argument) or of one subcommand."""

    optional_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        command = self.arguments[0] if self.arguments else ""
        try:
            text = help_text(command or None)
        except ValueError as e:
            raise self.error(str(e)) from None
        shown = _shown(self.env)
        shown.setdefault(self.env.docname, set()).add(command)
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        return [block]


def _shown(env: Any) -> dict[str, set[str]]:
    """docname -> the commands its directives show (kept in the environment)."""
    if not hasattr(env, "exman_help_shown"):
        env.exman_help_shown = {}
    shown: dict[str, set[str]] = env.exman_help_shown
    return shown


def _purge(app: Sphinx, env: Any, docname: str) -> None:
    _shown(env).pop(docname, None)


def _merge(app: Sphinx, env: Any, docnames: Any, other: Any) -> None:
    _shown(env).update(_shown(other))


def _check_all_documented(app: Sphinx, env: Any) -> None:
    from exman.cli import build_parser, subcommands

    documented = set().union(*_shown(env).values())
    for name in subcommands(build_parser()):
        if name not in documented:
            logger.warning(
                "exman %s is not documented: add '.. exman-help:: %s'", name, name
            )


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("exman-help", ExmanHelp)
    app.connect("env-purge-doc", _purge)
    app.connect("env-merge-info", _merge)
    app.connect("env-check-consistency", _check_all_documented)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
