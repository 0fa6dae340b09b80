"""``python -m exman.sweep SPEC ...`` is ``exman sweep SPEC ...``."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
