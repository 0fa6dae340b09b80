"""The columns of a :class:`~exman.look.rows.Table`, kept compact.

A column is a sequence of the Python values of its rows (indexing and
iterating give ints, floats, strings, None...), in one of three forms,
chosen from its values by :func:`compact`:

* an ``array.array`` of typecode ``q`` (every value an int of int64's
  range) or ``d`` (every value a float);
* a :class:`Coded` column: strings, bools and None with few distinct
  values (a status, a host, a model, a column that is None everywhere),
  each row a code into the list of the distinct values;
* a ``list`` for everything else.

A million runs then load without a million Python objects per column: the
cache stores the first two forms as bytes (:func:`to_plain`, read back
and checked by :func:`from_plain`), and a DataFrame's column is made of
them whole (:mod:`exman.look.frame`), not value by value. Which form a
column has never changes what it holds.
"""

from __future__ import annotations

import array
import itertools
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence

# not typing's: importing typing would slow every command's start
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeAlias, Union, overload

    _Values: TypeAlias = Sequence[Any]
else:
    _Values = Sequence

__all__ = [
    "CODED_TYPES",
    "Coded",
    "Column",
    "compact",
    "concat",
    "each",
    "from_plain",
    "has_values",
    "part",
    "set_cell",
    "take",
    "to_plain",
]

#: the types a :class:`Coded` column holds: none of them equal to another's
#: value (unlike 1, 1.0 and True), so that a dict tells the values apart
CODED_TYPES = frozenset({str, bool, type(None)})
#: the typecodes of the codes: one byte for up to 256 values
_CODES = ("B", "I")  # "I": unsigned 32-bit on every platform exman runs on
_NUMBERS = {"q": int, "d": float}
_INT64 = (-(2**63), 2**63 - 1)
_BYTES = bytes(range(256))
#: a list this short is coded to join a coded column (the runs read since)
_SHORT = 4096


class Coded(_Values):
    """Strings, bools and None with few distinct values: ``values[codes[i]]``.

    ``values`` may hold a value that no row has any more (one a row held
    before :meth:`__setitem__` changed it).
    """

    __slots__ = ("codes", "values")

    def __init__(self, values: list[Any], codes: array.array[int]) -> None:
        self.values = values
        self.codes = codes

    def __len__(self) -> int:
        return len(self.codes)

    if TYPE_CHECKING:

        @overload
        def __getitem__(self, index: int) -> Any: ...

        @overload
        def __getitem__(self, index: slice) -> list[Any]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self.values[c] for c in self.codes[index]]
        return self.values[self.codes[index]]

    def __iter__(self) -> Iterator[Any]:
        return map(self.values.__getitem__, self.codes)

    def __setitem__(self, index: int, value: Any) -> None:
        if type(value) not in CODED_TYPES:
            raise TypeError(f"a coded column holds no {type(value).__name__}")
        code = self._code(value)
        if code >= 256 and self.codes.typecode == "B":
            self.codes = array.array("I", self.codes)
        self.codes[index] = code

    def __repr__(self) -> str:
        return f"Coded({self.values!r}, {len(self)} rows)"

    def _code(self, value: Any) -> int:
        for code, known in enumerate(self.values):
            if type(known) is type(value) and known == value:
                return code
        self.values.append(value)
        return len(self.values) - 1


if TYPE_CHECKING:
    Column: TypeAlias = Union[list[Any], "array.array[Any]", Coded]


def compact(values: list[Any]) -> Column:
    """``values`` in the most compact form that holds them (see above)."""
    n = len(values)
    if not n:
        return values
    types = set(map(type, values))
    if types == {int} and _INT64[0] <= min(values) and max(values) <= _INT64[1]:
        return array.array("q", values)
    if types == {float}:
        return array.array("d", values)
    if types <= CODED_TYPES:
        distinct = dict.fromkeys(values)
        if len(distinct) <= n // 2:
            return _coding(distinct, values)
    return values


def _coding(distinct: dict[Any, None], values: Sequence[Any]) -> Coded:
    if len(distinct) <= 1:  # one value in every row (a status, a host...)
        return Coded(list(distinct), array.array("B", bytes(len(values))))
    code = {v: i for i, v in enumerate(distinct)}
    # one C call looks every value up (a third quicker than a map)
    return Coded(list(code), _codes(len(code), operator.itemgetter(*values)(code)))


def _codes(size: int, codes: Iterable[int] = ()) -> array.array[int]:
    """An array for codes into ``size`` values."""
    return array.array(_CODES[size > 256], codes)


def nones(n: int) -> Coded:
    """A column of ``n`` None."""
    return Coded([None], array.array("B", bytes(n)))


def take(column: Column, positions: Sequence[int]) -> Column:
    """The values at ``positions``, in the same form."""
    if isinstance(column, Coded):
        codes = column.codes
        return Coded(
            list(column.values),
            array.array(codes.typecode, map(codes.__getitem__, positions)),
        )
    if isinstance(column, array.array):
        return array.array(column.typecode, map(column.__getitem__, positions))
    return list(map(column.__getitem__, positions))


def part(column: Column | None, start: int, end: int) -> Column | None:
    """The rows ``start`` to ``end`` of ``column``, in the same form (None: none)."""
    if column is None:
        return None
    if isinstance(column, Coded):
        return Coded(column.values, column.codes[start:end])
    return column[start:end]


def concat(parts: Sequence[tuple[Column | None, int]]) -> Column:
    """The columns one after the other; ``(None, n)``: n rows without a value."""
    first = parts[0][0]
    if isinstance(first, array.array) and all(
        isinstance(c, array.array) and c.typecode == first.typecode for c, _ in parts
    ):
        out = array.array(first.typecode)
        for c, _ in parts:
            out.extend(c)  # type: ignore[arg-type]
        return out
    coded = [_coded(c, n) for c, n in parts]
    if any(isinstance(c, Coded) for c, _ in parts) and None not in coded:
        key: dict[Any, int] = {}
        remaps = []
        for piece in coded:
            assert piece is not None
            remaps.append([key.setdefault(v, len(key)) for v in piece.values])
        codes = _codes(len(key))
        for piece, remap in zip(coded, remaps):
            assert piece is not None
            codes.extend(_recoded(piece.codes, remap, codes.typecode))
        return Coded(list(key), codes)
    return compact(
        list(
            itertools.chain.from_iterable(
                [None] * n if c is None else c for c, n in parts
            )
        )
    )


def _recoded(
    codes: array.array[int], remap: list[int], typecode: str
) -> Iterable[int] | array.array[int]:
    """``codes`` each replaced by ``remap[code]``, fast in the usual cases:
    the same codes (a column of parts read alike) or bytes to bytes."""
    if codes.typecode == typecode and remap == list(range(len(remap))):
        return codes
    if codes.typecode == typecode == "B":
        table = bytes(remap) + bytes(256 - len(remap))
        return array.array("B", codes.tobytes().translate(table))
    return map(remap.__getitem__, codes)


def _coded(column: Column | None, n: int) -> Coded | None:
    """``column`` as a coded one, if it is or is short and could be."""
    if column is None:
        return nones(n)
    if isinstance(column, Coded):
        return column
    if (
        isinstance(column, list)
        and n <= _SHORT
        and set(map(type, column)) <= CODED_TYPES
    ):
        return _coding(dict.fromkeys(column), column)
    return None


def has_values(column: Column) -> bool:
    """Whether some row holds a value other than None."""
    if isinstance(column, Coded):
        if all(v is None for v in column.values):
            return False
        if len(column.values) == 1:
            return bool(len(column))
        nothing = [c for c, v in enumerate(column.values) if v is None]
        return any(c not in nothing for c in set(column.codes))
    if isinstance(column, array.array):
        return bool(len(column))
    return any(v is not None for v in column)


def each(column: Column, test: Callable[[Any], bool]) -> list[bool]:
    """``test`` of every cell: for a coded column once per distinct value,
    its rows then being one C-level map over its codes."""
    if isinstance(column, Coded):
        flags = [test(value) for value in column.values]
        return list(map(flags.__getitem__, column.codes))
    return list(map(test, column))


def set_cell(columns: dict[str, Column], key: str, index: int, value: Any) -> None:
    """``columns[key][index] = value``, in a list when the form cannot hold it."""
    column = columns[key]
    if isinstance(column, Coded):
        fits = type(value) in CODED_TYPES
    elif isinstance(column, array.array):
        fits = type(value) is _NUMBERS[column.typecode] and (
            column.typecode == "d" or _is_int64(value)
        )
    else:
        fits = True
    if not fits:
        column = columns[key] = list(column)
    column[index] = value


def _is_int64(value: Any) -> bool:
    return bool(_INT64[0] <= value <= _INT64[1])


# -- in the cache ---------------------------------------------------------------
def to_plain(column: Column) -> Any:
    """The column as builtins for the cache: a list, or a tuple with bytes."""
    if isinstance(column, Coded):
        return ("coded", column.values, column.codes.typecode, column.codes.tobytes())
    if isinstance(column, array.array):
        return (column.typecode, column.tobytes())
    return column


def from_plain(data: Any, n: int) -> Column | None:
    """The column stored as ``data`` with ``n`` rows, or None if it is not one."""
    if type(data) is list:
        return data if len(data) == n else None
    if type(data) is not tuple:
        return None
    if len(data) == 2 and data[0] in _NUMBERS:
        return _array(data[0], data[1], n)
    if len(data) == 4 and data[0] == "coded" and type(data[1]) is list:
        values, typecode, raw = data[1:]
        if typecode not in _CODES or not set(map(type, values)) <= CODED_TYPES:
            return None
        codes = _array(typecode, raw, n)
        if codes is None or not n:
            return None if codes is None else Coded(values, codes)
        if typecode == "B":  # no byte but the codes 0..len(values) - 1
            if raw.translate(None, _BYTES[: len(values)]):
                return None
        elif max(codes) >= len(values):
            return None
        return Coded(values, codes)
    return None


def _array(typecode: str, data: Any, n: int) -> array.array[Any] | None:
    out = array.array(typecode)
    if type(data) is not bytes or len(data) != out.itemsize * n:
        return None
    out.frombytes(data)
    return out
