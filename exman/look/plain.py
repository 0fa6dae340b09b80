"""The index's columns as plain Python lists, typed as pandas would type them.

``exman ls`` prints a few hundred lines from a shell; importing pandas
would be most of its time. :func:`plain_frame` makes the columns of a
:class:`~exman.look.frame.Plan` what :func:`~exman.look.frame.build_frame`
makes of them, without pandas: the same names and order, each column with
the *kind* of the dtype pandas would give it (``i`` int64, ``f`` float64,
``b`` bool, ``M`` a time, ``S`` text, ``O`` anything else) and values
that print as that dtype's would. Where a column holds what pandas would
type otherwise than the rules below foresee (a YAML date, an integer too
large for a float, text mixed with NaN…) it returns None, and the caller
builds the DataFrame: the listing is the same either way
(``tests/test_ls_plain.py`` compares them).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Iterator, Mapping, Sequence

from .columns import Coded
from .frame import Plan

# not typing's: importing typing would slow every command's start
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["NAN", "NotPlain", "PlainColumn", "PlainFrame", "iso_time", "plain_frame"]

#: a float64 holds every integer up to this exactly
_EXACT = 2**53
#: the missing value of a ``f`` column: one object, so that a set of the
#: values counts it once (as ``nunique(dropna=False)`` does)
NAN = float("nan")
_INT64 = 2**63
#: params.yaml's ``time`` (``TIME_FORMAT``): ``2026-01-31T12:00:00``, the
#: length and where each separator is
_TIME_LEN = 19
_TIME_SEPARATORS = ((4, "-"), (7, "-"), (10, "T"), (13, ":"), (16, ":"))
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


class PlainColumn:
    """A column: its ``kind`` (see the module docstring) and ``values``.

    The values of a ``M`` column are ISO 8601 texts (``T`` between date and
    time) or µs since the epoch (:func:`iso_time` makes texts of both), or
    None where there is no time; of a ``f`` column floats, :data:`NAN` where
    there is none.
    """

    __slots__ = ("kind", "values")

    def __init__(self, kind: str, values: list[Any]) -> None:
        self.kind = kind
        self.values = values

    def __len__(self) -> int:
        return len(self.values)


class NotPlain(Exception):
    """A column holds what pandas would type otherwise than :func:`plain_frame`
    foresees: build the DataFrame instead."""


class PlainFrame:
    """The columns of the runs, in the frame's order. A column is made when
    first asked for (``columns[name]``): a listing looks at a few of them.

    :raises NotPlain: (asking for a column) see :func:`plain_frame`.
    """

    def __init__(
        self,
        columns: Mapping[str, PlainColumn],
        rows: int,
        uniform: frozenset[str] = frozenset(),
    ) -> None:
        self.columns = columns
        self.rows = rows
        #: columns known, without being made, to hold one value in every row
        #: (a parameter no run changed): a listing leaves them out unmade
        self.uniform = uniform

    def __len__(self) -> int:
        return self.rows

    def take(self, positions: Sequence[int]) -> PlainFrame:
        """The rows at ``positions``, in that order."""
        columns = self.columns

        def taken(name: str) -> PlainColumn:
            column = columns[name]
            return PlainColumn(column.kind, [column.values[p] for p in positions])

        return PlainFrame(_Made(list(columns), taken), len(positions), self.uniform)

    def select(self, names: Sequence[str]) -> PlainFrame:
        """Only the columns ``names``, in that order."""
        columns = {name: self.columns[name] for name in names}
        return PlainFrame(columns, self.rows, self.uniform & set(names))


class _Made(Mapping[str, PlainColumn]):
    """Columns by name, each made by ``make(name)`` when first asked for."""

    def __init__(self, names: list[str], make: Callable[[str], PlainColumn]) -> None:
        self._names = dict.fromkeys(names)
        self._make = make
        self._made: dict[str, PlainColumn] = {}

    def __getitem__(self, name: str) -> PlainColumn:
        column = self._made.get(name)
        if column is None:
            if name not in self._names:
                raise KeyError(name)
            column = self._made[name] = self._make(name)
        return column

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def plain_frame(plan: Plan, root: str | None = None) -> PlainFrame:
    """The columns of ``plan``, each made when first asked for; asking for
    one that pandas would type in a way not reproduced here raises
    :class:`NotPlain` (``plan`` is left whole: pass it to
    :func:`~exman.look.frame.frame_of` then).

    :param root: the root's folder: the ``root`` column (the run folders)
        is written relative to it, as ``exman ls`` writes it.
    """

    def make(name: str) -> PlainColumn:
        how, values = plan.columns[name]
        if how != "root" and not isinstance(values, list):
            values = list(values)  # a compact column (exman.look.columns)
        if how == "root":
            column: PlainColumn | None = PlainColumn("O", _folders(*values, root=root))
        elif how == "id":
            column = PlainColumn("i", values)
        elif how == "time":
            column = _times(values)
        elif how == "utc":
            column = _typed(values, "M")
        elif how == "float64":
            column = _typed(values, "f")
        elif how == "int64":
            column = _typed(values, "i")
        elif how == "object":
            column = PlainColumn("O", values)
        else:
            column = _inferred(values)
        if column is None:
            raise NotPlain(name)
        if how != "id":  # the ids are in order already
            ordered = plan.ordered(column.values)
            column.values = ordered if isinstance(ordered, list) else list(ordered)
        return column

    # a compact column of one value (codes into it): that value in every row
    uniform = frozenset(
        name
        for name, (_, values) in plan.columns.items()
        if isinstance(values, Coded) and len(values.values) == 1
    )
    return PlainFrame(_Made(list(plan.columns), make), len(plan), uniform)


def _folders(folders: list[str], names: list[str], *, root: str | None) -> list[str]:
    """The run folders as the listing writes them: relative to ``root``."""
    prefix = None if root is None else os.path.join(root, "")
    texts = {}
    for folder in set(folders):
        if prefix is not None and folder.startswith(prefix):
            texts[folder] = folder[len(prefix) :] + "/"
        else:
            texts[folder] = folder + "/"
    return [texts[folder] + name for folder, name in zip(folders, names)]


def _times(values: list[Any]) -> PlainColumn | None:
    """params.yaml's ``time`` (``2026-01-31T12:00:00``), checked."""
    texts = [v for v in values if v is not None] if None in values else values
    if not set(map(type, texts)) <= {str} or not set(map(len, texts)) <= {_TIME_LEN}:
        return None
    # the separators of every text at once, a slice of the joined texts each;
    # with them in place, fromisoformat takes the ASCII digits between, only
    joined = "".join(texts)
    for at, separator in _TIME_SEPARATORS:
        if joined[at::_TIME_LEN].strip(separator):
            return None
    try:
        all(map(datetime.datetime.fromisoformat, texts))
    except ValueError:
        return None  # pandas makes it NaT: leave it to pandas
    return PlainColumn("M", values)


def iso_time(value: str | int | None) -> str | None:
    """A value of a ``M`` column in ISO 8601: µs since the epoch (the run's
    start and end) in UTC, a text as it is."""
    if value is None or isinstance(value, str):
        return value
    return (_EPOCH + datetime.timedelta(microseconds=value)).isoformat()


def _typed(values: list[Any], kind: str) -> PlainColumn | None:
    """A column pandas is told the dtype of (float64, int64)."""
    types = set(map(type, values))
    if kind == "i":
        return PlainColumn("i", values) if types <= {int} else None
    if kind == "M":  # µs since the epoch: texts when shown (iso_time)
        return PlainColumn("M", values) if types <= {int, type(None)} else None
    if not types <= {int, float, type(None)}:
        return None
    return _floats(values, types)


def _floats(values: list[Any], types: set[type]) -> PlainColumn | None:
    """A float64 column of numbers and None (NaN where missing), or None
    when an integer in it is one a float would round."""
    if types == {float} and _no_gaps(values):
        return PlainColumn("f", values)
    if int in types and any(type(v) is int and abs(v) > _EXACT for v in values):
        return None
    return PlainColumn("f", [NAN if v is None or v != v else float(v) for v in values])


def _no_gaps(values: list[Any]) -> bool:
    """Whether no cell of a column of floats and None is None or NaN: their
    sum, in C, is then a number (a NaN makes it NaN, a None an error)."""
    try:
        total = sum(values)
    except TypeError:
        return False
    return bool(total == total)


def _inferred(values: list[Any]) -> PlainColumn | None:
    """The column pandas makes of ``values`` (``pd.Series(values)``)."""
    types = set(map(type, values))
    missing = type(None) in types
    types.discard(type(None))
    if not types:
        return PlainColumn("O", values)
    if types == {str}:
        return PlainColumn("S", values)
    if types == {bool}:
        return PlainColumn("O" if missing else "b", values)
    if types == {int} and not missing:
        if min(values) >= -_INT64 and max(values) < _INT64:
            return PlainColumn("i", values)
        return None
    if types <= {int, float}:
        return _floats(values, types)
    if float in types and any(type(v) is float and v != v for v in values):
        return None  # NaN beside text: pandas may make a text column of it
    if types & {datetime.datetime, datetime.date}:
        return None  # pandas may make times of them
    return PlainColumn("O", values)
