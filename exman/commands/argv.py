"""The ``exman`` command line before argparse reads it.

Two things argparse cannot be told: a value that begins with ``-``
(``--sort -lr``, a descending column) and the arguments after ``--`` of
``exman rerun ID -- ARGS``, which go to the script as they are.
"""

from __future__ import annotations

__all__ = ["DASHED_VALUES", "glue_dashed", "rerun_rest"]

#: options whose value may begin with "-" (a descending column: --sort -lr)
DASHED_VALUES = frozenset({"--sort"})


def rerun_rest(argv: list[str]) -> tuple[list[str], list[str]] | None:
    """For ``exman rerun ID -- ARGS``: the arguments before ``--`` and after.

    What follows ``--`` goes to the script as is (argparse would drop a
    second ``--`` from it). None for any other command.
    """
    if "--" not in argv:
        return None
    at = argv.index("--")
    head, skip = argv[:at], False
    for token in head:
        if skip:
            skip = False
        elif token == "--root":
            skip = True
        elif not token.startswith("-"):
            return (head, argv[at + 1 :]) if token == "rerun" else None
    return None


def glue_dashed(argv: list[str]) -> list[str]:
    """``--sort -lr`` as ``--sort=-lr``: argparse takes ``-lr`` for an option.

    Only before ``--`` (what follows goes to a script as is).
    """
    out: list[str] = []
    tokens = iter(argv)
    for token in tokens:
        if token == "--":
            out += [token, *tokens]
            break
        value = next(tokens, None) if token in DASHED_VALUES else None
        if value is None:
            out.append(token)
        elif value.startswith("-") and value != "--":
            out.append(f"{token}={value}")
        else:
            out += [token, value]
    return out
