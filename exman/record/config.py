"""Values back into arguments: config files, params.yaml and sweep tasks.

A run's params.yaml, a ``--config`` file, ``default_config_files`` and the
values of a sweep task (``EXMAN_SWEEP_PARAMS``) all reach the script the
same way: typed YAML values are turned into the strings configargparse puts
on the command line, action by action, so that ``true`` gives a
``store_true`` flag, a list gives ``nargs`` values and ``null`` gives None
for an :class:`optional` type.
"""

from __future__ import annotations

import argparse
import glob
import json
import os

import configargparse

from .params import ParamsError, load_yaml

# not typing's: importing typing would slow every run's start
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO, Any, Callable

__all__ = [
    "NEVER_RESTORED",
    "SWEEP_PARAMS_ENV",
    "ConfigFile",
    "config_items",
    "find_action",
    "optional",
    "str2bool",
    "sweep_args",
]

#: a JSON mapping of parameter values, set by ``exman sweep`` for each task;
#: applied as a ``--config`` file would be, below the command line
SWEEP_PARAMS_ENV = "EXMAN_SWEEP_PARAMS"
#: exman's own flags and keys: saved in params.yaml, never restored by --config
NEVER_RESTORED = frozenset(
    {
        "tmp",
        "name",
        "config",
        "config_file",
        "git_dirty",
        "resume_run",
        "root",
        "time",
        "id",
        "commit",
        "dirty",
    }
)

_TRUE = ("true", "t", "yes", "y", "on", "1")
_FALSE = ("false", "f", "no", "n", "off", "0")


def str2bool(value: str | bool, default: bool | None = None) -> bool:
    """``type=bool`` done right: true/false, yes/no, on/off, t/f, y/n, 1/0.

    :raises argparse.ArgumentTypeError: any other value, unless ``default``
        is given, which is then returned.
    """
    if isinstance(value, bool):
        return value
    low = value.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    if default is None:
        raise argparse.ArgumentTypeError(
            f"invalid bool value {value!r}: use one of {', '.join(_TRUE + _FALSE)}"
        )
    return default


class optional:
    """``type=exman.optional(int)``: like ``int``, but ``None``/``null`` give None.

    Use it for arguments whose default is None, so that ``--config`` can
    restore a None.
    """

    def __init__(self, type: Callable[[str], Any]) -> None:
        self.type = type
        self.__name__ = f"optional({getattr(type, '__name__', repr(type))})"

    def __call__(self, value: Any) -> Any:
        if value is None or (
            isinstance(value, str) and value.lower() in ("none", "null")
        ):
            return None
        return self.type(value)

    def __repr__(self) -> str:
        return self.__name__


class ConfigFile(configargparse.ConfigFileParser):
    """Reads params.yaml / config files for an :class:`ExParser`.

    Safe loader only; errors name the file and line; exman's own keys and
    volatile arguments are not restored from ``--config``; a saved None is
    restored only where the argument can take it.
    """

    def __init__(self, owner: Any, defaults: list[str] | None = None) -> None:
        self.owner = owner
        #: the default config files (globs): they may set volatile arguments
        self.defaults = [] if defaults is None else defaults

    def _is_default(self, name: str) -> bool:
        full = os.path.abspath(name)
        for entry in self.defaults:
            for path in glob.glob(os.path.expanduser(entry)):
                if os.path.abspath(path) == full:
                    return True
        return False

    def get_syntax_description(self) -> str:
        return (
            "Config files are YAML mappings ('key: value'), like a run's params.yaml."
        )

    def parse(self, stream: IO[str]) -> dict[str, Any]:
        name = getattr(stream, "name", "<config>")
        try:
            try:
                text: str | bytes = stream.read()
            except UnicodeDecodeError:
                # not UTF-8: the loader reads the bytes and names the line
                with open(name, "rb") as f:
                    text = f.read()
            data = load_yaml(text, name)
        except ParamsError as e:
            raise configargparse.ConfigFileParserException(str(e)) from None
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise configargparse.ConfigFileParserException(
                f"{name}: expected 'key: value' pairs, found a {type(data).__name__}"
            )
        return self.owner._config_items(
            data, restoring=not self._is_default(name), source=name
        )


def find_action(
    parser: configargparse.ArgumentParser, key: str
) -> argparse.Action | None:
    """The argument a config key (an option name or a dest) stands for."""
    for action in parser._actions:
        if key in parser.get_possible_config_keys(action):
            return action
    return None


def config_items(
    parser: configargparse.ArgumentParser,
    data: dict[Any, Any],
    *,
    skip: frozenset[str] | set[str] = NEVER_RESTORED,
) -> dict[str, Any]:
    """Turn a YAML mapping into the strings and lists configargparse wants.

    :param skip: keys not to restore (exman's own, volatile arguments).
    """
    items: dict[str, Any] = {}
    for key, value in data.items():
        key = str(key)
        if key in skip:
            continue
        if value is None:
            # None is the default already, or only an optional() type takes it
            action = find_action(parser, key)
            if (
                action is not None
                and isinstance(action.type, optional)
                and action.default is not None
            ):
                items[key] = "None"
            continue
        action = find_action(parser, key)
        if isinstance(action, argparse._StoreConstAction):
            # store_true/store_false/store_const: the flag is given exactly
            # when the saved value is the one it stores
            items[key] = "true" if value == action.const else "false"
        elif isinstance(value, (list, dict)) and not _takes_list(action):
            if (
                isinstance(value, list)
                and len(value) == 1
                and getattr(action, "nargs", None) == 1
            ):
                # configargparse gives lists only to nargs > 1
                items[key] = _text(value[0])
            else:
                # one value that is a structure (type=json.loads): as JSON
                items[key] = json.dumps(value, ensure_ascii=False, default=str)
        elif isinstance(value, list):
            items[key] = [_text(v) for v in value]
        elif isinstance(value, bool):
            items[key] = "true" if value else "false"
        else:
            items[key] = str(value)
    return items


def sweep_args(
    parser: configargparse.ArgumentParser,
    *,
    skip: frozenset[str] | set[str] = NEVER_RESTORED,
) -> list[str]:
    """Command-line arguments for the values a sweep task passes in.

    :param skip: keys a task does not set (exman's own).
    """
    text = os.environ.get(SWEEP_PARAMS_ENV)
    if not text:
        return []
    try:
        data = json.loads(text)
    except ValueError as e:
        parser.error(f"{SWEEP_PARAMS_ENV} is not valid JSON: {e}")
    if not isinstance(data, dict):
        parser.error(f"{SWEEP_PARAMS_ENV} must be a JSON object of parameters")
    extra: list[str] = []
    items = config_items(parser, data, skip=skip)
    take = getattr(parser, "_restoring", None)
    if take is not None:  # positionals: see exman.record.positionals
        take.take(items, f"the sweep ({SWEEP_PARAMS_ENV})")
    for key, value in items.items():
        action = find_action(parser, key)
        if action is None:
            parser.error(
                f"the sweep sets {key!r}, which is not an argument of this script"
            )
        extra += parser.convert_item_to_command_line_arg(action, key, value)
    return extra


def _takes_list(action: argparse.Action | None) -> bool:
    """Whether configargparse can give ``action`` a list of values."""
    if action is None or isinstance(action, argparse._AppendAction):
        return True
    nargs = action.nargs
    return nargs in ("+", "*") or (isinstance(nargs, int) and nargs > 1)


def _text(value: Any) -> str:
    """One item of a saved list as the command line would give it."""
    if value is None:
        return "None"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)
