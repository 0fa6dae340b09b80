"""Reading and writing ``params.yaml``.

Values that YAML's safe dumper does not know (paths, enums, tuples, numpy
scalars and arrays, sets) are written as plain YAML so that the file can be
read back with the safe loader, by exman or by hand. Nothing here changes
PyYAML's global state, and PyYAML is imported only when a file is written
or read: the ``exman`` command's listings read the cache and never need it.
"""

from __future__ import annotations

import datetime
import enum
import pathlib
from collections.abc import Mapping

# not typing's: importing typing would slow every run's start
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

__all__ = [
    "PARAMS_FILE",
    "TIME_FORMAT",
    "ParamsError",
    "dump_params",
    "dumper",
    "load_params",
    "load_yaml",
    "plain",
    "register_str_converter",
    "written_as_is",
]

PARAMS_FILE = "params.yaml"
#: how ``time`` is written in params.yaml (as the original exman did)
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"


class ParamsError(ValueError):
    """A params or config file that cannot be read, with its path and line."""

    def __init__(self, path: str | pathlib.Path, message: str, line: int | None = None):
        self.path = str(path)
        self.line = line
        where = self.path if line is None else f"{self.path}, line {line}"
        super().__init__(f"{where}: {message}")


def plain(value: Any) -> Any:
    """Turn ``value`` into something YAML's safe dumper writes as plain YAML.

    Paths become strings, enums their value, tuples and sets lists, numpy
    scalars and arrays Python numbers and lists. Anything else unknown
    becomes its ``str()``.
    """
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return plain(value.tolist())
    # subclasses (numpy.float64, a str mixin…) would come back here forever
    for base in (bool, int, float, str):
        if isinstance(value, base):
            return base(value)
    if isinstance(value, pathlib.PurePath):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((plain(v) for v in value), key=repr)
    if type(value) in (datetime.date, datetime.datetime, bytes):
        return value
    return str(value)


#: exact type -> its ``tostr``, from :func:`register_str_converter`
_CONVERTERS: dict[type, Callable[[Any], str]] = {}
#: the types YAML's safe dumper writes itself and exman's dumper leaves to it
_SAFE_KINDS = frozenset(
    (
        type(None),
        str,
        bytes,
        bool,
        int,
        float,
        list,
        dict,
        datetime.date,
        datetime.datetime,
    )
)
_dumper: Any = None  # exman's dumper class, made on first use


def _represent_str(tostr: Callable[[Any], str]) -> Callable[[Any, Any], Any]:
    def represent(dumper: Any, data: Any) -> Any:
        return dumper.represent_str(str(tostr(data)))

    return represent


def dumper() -> Any:
    """The safe dumper, made total: unknown objects go through :func:`plain`."""
    global _dumper
    if _dumper is None:
        import yaml

        base = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # C: several times faster

        class _Dumper(base):  # type: ignore[misc, valid-type]
            def represent_undefined(self, data: Any) -> Any:
                return self.represent_data(plain(data))

        _Dumper.add_representer(None, _Dumper.represent_undefined)
        for made in (tuple, set, frozenset):
            _Dumper.add_representer(made, _Dumper.represent_undefined)
        _Dumper.add_multi_representer(enum.Enum, _Dumper.represent_undefined)
        _Dumper.add_multi_representer(pathlib.PurePath, _Dumper.represent_undefined)
        for kind, tostr in _CONVERTERS.items():
            _Dumper.add_representer(kind, _represent_str(tostr))
        _dumper = _Dumper
    return _dumper


def register_str_converter(*types: type, tostr: Callable[[Any], str] = str) -> None:
    """Write values of exactly these ``types`` into params.yaml as ``tostr(value)``.

    exman 0.1.9 added such representers to PyYAML's global state; here they
    change exman's own dumper only, and the file stays plain strings that
    the safe loader reads.
    """
    for kind in types:
        _CONVERTERS[kind] = tostr
        if _dumper is not None:
            _dumper.add_representer(kind, _represent_str(tostr))


def written_as_is(kind: type) -> bool:
    """Whether values of exactly ``kind`` are written by YAML's own safe
    representer (not one registered by :func:`register_str_converter`)."""
    return kind in _SAFE_KINDS and kind not in _CONVERTERS


def dump_params(params: Mapping[str, Any], *, time: datetime.datetime, id: int) -> str:
    """The text of a params.yaml: ``params`` sorted by key, then time and id.

    The layout is the original exman's, so old tools keep reading new runs.
    """
    import yaml

    body = yaml.dump(
        dict(params),
        Dumper=dumper(),
        default_flow_style=False,
        sort_keys=True,
        allow_unicode=True,
    )
    if body.strip() == "{}":
        body = ""
    return f"{body}time: '{time.strftime(TIME_FORMAT)}'\nid: {int(id)}\n"


def load_yaml(text: str | bytes, path: str | pathlib.Path = "<string>") -> Any:
    """Parse YAML with the safe loader; errors name the file and line.

    A document whose aliases expand to far more values than its text holds
    is refused (see :mod:`exman.record.yamlsize`).
    """
    import yaml

    from .yamlsize import check_expansion  # a reader's: not on a new run's path

    try:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            check_expansion(node, len(text))
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.reader.ReaderError as e:
        # a byte that is no UTF-8 or a control character: say where it is
        head = text[: e.position]
        at = (head.count(b"\n") if isinstance(head, bytes) else head.count("\n")) + 1
        char = e.character
        code: int | None = (
            char if isinstance(char, int) else ord(char) if len(char) == 1 else None
        )
        what = f"{e.reason} (#x{code:02x})" if code is not None else e.reason
        raise ParamsError(path, f"invalid YAML: {what}", at) from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = e.problem or e.context or "invalid YAML"
        raise ParamsError(path, f"invalid YAML: {problem}", line) from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ParamsError(path, f"invalid YAML: {e}") from None


def load_params(path: str | pathlib.Path) -> dict[str, Any]:
    """Read a params.yaml (or any YAML mapping) with the safe loader.

    :raises ParamsError: the file is not valid YAML or not a mapping; the
        message names the file and, when known, the line.
    :raises OSError: the file cannot be read.
    """
    with open(path, "rb") as f:
        data = load_yaml(f.read(), path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParamsError(
            path, f"expected 'key: value' pairs, found a {type(data).__name__}"
        )
    return data
