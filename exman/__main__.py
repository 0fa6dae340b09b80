"""``python -m exman``: the ``exman`` command."""

from __future__ import annotations

from .cli import console

raise SystemExit(console())
