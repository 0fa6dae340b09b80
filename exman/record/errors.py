"""The errors every layer raises: the root of exman's exceptions."""

from __future__ import annotations

__all__ = ["ExmanError", "RunNotFound"]


class ExmanError(Exception):
    """Something exman was asked to do cannot be done; the message says why."""


class RunNotFound(ExmanError, KeyError):
    """No run with the given id in this root."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
