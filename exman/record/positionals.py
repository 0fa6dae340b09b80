"""Positional arguments restored from a config file or a sweep task.

configargparse restores options only: a positional argument has no option
string to put on the command line, and whether the command line already
gives it is known only once argparse has matched it. So, for one parse, a
positional that a config file gives a value to is made optional with a
marker default; after the parse, a positional still holding the marker was
not on the command line and gets the restored value, converted and checked
as argparse would have done it. The command line still wins; when it gives
every positional, the parse is done again without any of this, since
optional positionals may split the command line's values differently.
"""

from __future__ import annotations

import argparse

# not typing's: importing typing would slow every run's start
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["Positionals"]


class _Missing:
    """The marker default: the positional was not on the command line."""

    def __repr__(self) -> str:
        return "<not given>"


_MISSING = _Missing()
#: nargs of positionals that cannot be restored (subcommands, the rest)
_NOT_RESTORED = (argparse.REMAINDER, argparse.PARSER, argparse.SUPPRESS)


class Positionals:
    """The positionals restored in one parse of ``parser``."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser
        #: dest -> (its action, the strings restored, its original nargs, where
        #: they come from)
        self.values: dict[str, tuple[argparse.Action, list[str], Any, str]] = {}
        self._saved: dict[argparse.Action, tuple[Any, ...]] = {}

    def take(self, items: dict[str, Any], source: str) -> None:
        """Move the values of positionals out of ``items`` (config items as
        strings and lists of strings) and make those positionals optional
        until :meth:`finish`. The first value given for a positional wins,
        as with options: the caller takes the highest priority first.

        :param source: where the values come from (a file), for errors.
        """
        for action in self.parser._actions:
            if (
                action.option_strings
                or action.dest == argparse.SUPPRESS
                or action.dest not in items
                or action.nargs in _NOT_RESTORED
            ):
                continue
            value = items.pop(action.dest)
            if action.dest in self.values:
                continue
            strings = [str(v) for v in value] if isinstance(value, list) else [value]
            self.values[action.dest] = (action, strings, action.nargs, source)
            self._saved[action] = (
                action.nargs,
                action.required,
                action.default,
                action.choices,
            )
            action.nargs = (
                argparse.OPTIONAL
                if action.nargs in (None, argparse.OPTIONAL)
                else argparse.ZERO_OR_MORE
            )
            action.required = False
            action.default = _MISSING
            action.choices = None

    def reset(self) -> None:
        """Give the positionals their own nargs, default and choices back."""
        for action, (nargs, required, default, choices) in self._saved.items():
            action.nargs, action.required = nargs, required
            action.default, action.choices = default, choices
        self._saved.clear()

    def all_given(self, ns: argparse.Namespace) -> bool:
        """Whether the command line held as many positional values as the
        positionals need: then argparse, not the restored values, decides."""
        if not self.values:
            return False
        given = need = 0
        for action in self.parser._actions:
            if (
                action.option_strings
                or action.dest == argparse.SUPPRESS
                or action.nargs in _NOT_RESTORED
            ):
                continue
            saved = self._saved.get(action)
            nargs = action.nargs if saved is None else saved[0]
            if nargs in (None, argparse.ONE_OR_MORE):
                need += 1
            elif isinstance(nargs, int):
                need += nargs
            value = getattr(ns, action.dest, _MISSING)
            if value is _MISSING or (saved is None and value is action.default):
                continue
            single = nargs in (None, argparse.OPTIONAL)
            given += len(value) if isinstance(value, list) and not single else 1
        return given >= need

    def finish(self, ns: argparse.Namespace) -> None:
        """Fill in the positionals the command line did not give."""
        self.reset()
        for dest, (action, strings, nargs, source) in self.values.items():
            value: Any = getattr(ns, dest, _MISSING)
            if value is _MISSING:
                try:
                    value = self.parser._get_values(action, strings)
                except argparse.ArgumentError as e:
                    self.parser.error(f"{e}, restored from {source}")
                setattr(ns, dest, value)
            elif isinstance(nargs, int) and len(value) != nargs:
                self.parser.error(
                    f"argument {action.metavar or dest}: expected {nargs} "
                    f"arguments, got {len(value)}"
                )
