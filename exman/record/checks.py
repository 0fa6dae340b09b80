"""Validators: checks of the parsed arguments together, before a run exists.

A validator passes when it returns ``True`` or ``None`` (numpy's true
counts as ``True``); any other value, or an exception, refuses the
arguments with its message formatted with them, as exman 0.1.9 did. A
validator that returns a message string therefore refuses: a truthy answer
is not a yes.
"""

from __future__ import annotations

import argparse
import collections

__all__ = ["Validator", "passed", "validate"]


# not typing's: importing typing would slow every run's start
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, NamedTuple

    class Validator(NamedTuple):
        """A check and the message it refuses with (``str.format`` of the arguments)."""

        call: Callable[[argparse.Namespace], Any]
        message: str

else:
    # the named tuple of exman 0.1.9, made without typing
    Validator = collections.namedtuple("Validator", "call,message")


def passed(answer: Any) -> bool:
    """Whether a validator's ``answer`` lets the arguments through."""
    if answer is True or answer is None:
        return True
    kind = type(answer)
    # numpy.bool_ (numpy.bool in numpy 2), without importing numpy
    return (
        kind.__module__ == "numpy"
        and kind.__name__ in ("bool_", "bool")
        and bool(answer)
    )


def validate(validator: Validator, ns: argparse.Namespace) -> None:
    """Run ``validator`` on the parsed arguments.

    :raises argparse.ArgumentError: it refused them or raised (its own
        ArgumentError goes through as it is).
    """
    try:
        answer = validator.call(ns)
    except argparse.ArgumentError:
        raise
    except Exception as e:
        raise argparse.ArgumentError(None, _format(validator.message, ns)) from e
    if not passed(answer):
        raise argparse.ArgumentError(None, _format(validator.message, ns))


def _format(message: str, ns: argparse.Namespace) -> str:
    try:
        return message.format(**vars(ns))
    except (KeyError, IndexError, ValueError):
        return message
