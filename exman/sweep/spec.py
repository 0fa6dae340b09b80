"""The sweep spec: what to run, read and checked.

A spec is a YAML (or JSON) mapping: the command, the values (``configs``,
``grid``, ``random``, ``repeat``), the root, hooks and launcher sections.
:meth:`Spec.tasks` gives its numbered tasks (:mod:`.expand`), each with a
stable key, a hash of the command and the task's values, that its run
records; a re-run of the sweep knows what is done from these keys.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

from ..record.config import SWEEP_PARAMS_ENV
from ..record.params import ParamsError, load_yaml
from ..record.run import SWEEP_ENV
from ..record.store import ROOT_ENV, ExmanError, check_name
from .expand import SpecError, Task, TaskList, task_key
from .launchers.ray_options import check_options as _ray_options
from .launchers.slurm_options import check_options as _slurm_options

__all__ = [
    "DISTRIBUTIONS",
    "SPEC_KEYS",
    "Spec",
    "SpecError",
    "Task",
    "load_spec",
    "task_key",
]

StrPath = Union[str, "os.PathLike[str]"]

#: the keys a spec may have
SPEC_KEYS = (
    "command",
    "root",
    "name",
    "grid",
    "configs",
    "random",
    "repeat",
    "seed_param",
    "ignore",
    "on_task_end",
    "on_sweep_end",
    "webhook",
    "ray",
    "slurm",
)
RANDOM_KEYS = ("samples", "seed", "space")
#: the distributions of ``random.space``, with the form of their argument
DISTRIBUTIONS = {
    "uniform": "[low, high]",
    "loguniform": "[low, high] with 0 < low",
    "randint": "[low, high], both included",
    "normal": "[mean, std]",
    "choice": "[value, value, ...]",
}
DEFAULT_ROOT = "exman"


@dataclass
class Spec:
    """A loaded, validated sweep spec.

    Build it with :func:`load_spec` (a file) or :meth:`from_mapping`.
    """

    command: str
    argv: list[str]
    root: pathlib.Path
    name: str
    cwd: pathlib.Path
    path: pathlib.Path | None = None
    grid: dict[str, list[Any]] = field(default_factory=dict)
    configs: list[dict[str, Any]] = field(default_factory=list)
    random: dict[str, Any] | None = None
    repeat: int = 1
    seed_param: str | None = None
    on_task_end: str | None = None
    on_sweep_end: str | None = None
    webhook: str | None = None
    #: the ``ray:`` section: what each task asks of a Ray cluster
    ray: dict[str, Any] = field(default_factory=dict)
    #: the ``slurm:`` section: what each array element asks of SLURM
    slurm: dict[str, Any] = field(default_factory=dict)
    #: remarks on the expansion (a random space smaller than the samples asked)
    notes: list[str] = field(default_factory=list)
    #: the flags of ``command`` that do not count in the task keys
    ignore: list[str] = field(default_factory=list)
    #: the script's ``volatile=True`` arguments, as its runs recorded them:
    #: they do not count in the keys either (set before :meth:`tasks`)
    volatile: list[str] = field(default_factory=list)
    _tasks: TaskList | None = field(default=None, repr=False)
    _shell_root: str | None = field(default=None, repr=False)

    # -- building ----------------------------------------------------------------
    @classmethod
    def from_mapping(
        cls,
        data: Mapping[str, Any],
        *,
        path: StrPath | None = None,
        base: StrPath | None = None,
    ) -> Spec:
        """Validate a spec given as a mapping.

        :param path: the file it came from (named in errors; its folder is
            where the command runs and ``root`` is relative to, its stem is
            the default name).
        :param base: that folder when there is no file (default: the
            current folder).
        :raises SpecError: a key or value is wrong; the message says which.
        """
        where = str(path) if path is not None else "sweep spec"
        if not isinstance(data, Mapping):
            raise SpecError(
                f"{where}: expected a mapping of keys such as 'command' and "
                f"'grid', found a {type(data).__name__}"
            )
        unknown = [str(k) for k in data if k not in SPEC_KEYS]
        if unknown:
            raise SpecError(
                f"{where}: unknown key {unknown[0]!r}; valid keys: "
                + ", ".join(SPEC_KEYS)
            )
        err = _Errors(where)
        spec_path = pathlib.Path(os.path.abspath(path)) if path is not None else None
        folder = (
            spec_path.parent
            if spec_path is not None
            else pathlib.Path(os.path.abspath(base if base is not None else "."))
        )
        command = data.get("command")
        if not isinstance(command, str) or not command.strip():
            raise err("command", "is required: the command line of one run")
        try:
            argv = shlex.split(command)
        except ValueError as e:
            raise err("command", f"cannot be split into words ({e})") from None
        name = data.get("name")
        if name is None:
            name = spec_path.stem if spec_path is not None else "sweep"
        if not isinstance(name, str):
            raise err("name", f"must be a string, not {name!r}")
        try:
            check_name(name, "name")
        except ExmanError as e:
            raise err("name", str(e)) from None
        root_value = data.get("root", DEFAULT_ROOT)
        if not isinstance(root_value, str) or not root_value.strip():
            raise err("root", f"must be a folder name, not {root_value!r}")
        root = folder / os.path.expanduser(root_value)

        grid = _grid(data.get("grid"), err)
        configs = _configs(data.get("configs"), err)
        rand = _random(data.get("random"), err)
        repeat = data.get("repeat", 1)
        if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
            raise err("repeat", f"must be a whole number >= 1, not {repeat!r}")
        seeding = "repeat" in data or "seed_param" in data
        seed_param = data.get("seed_param", "seed") if seeding else None
        if seed_param is not None and (
            not isinstance(seed_param, str) or not seed_param
        ):
            raise err("seed_param", f"must be a parameter name or null: {seed_param!r}")
        hooks = {}
        for key in ("on_task_end", "on_sweep_end", "webhook"):
            value = data.get(key)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise err(key, f"must be a string, not {value!r}")
            hooks[key] = value
        webhook = hooks["webhook"]
        if webhook is not None and not webhook.startswith(("http://", "https://")):
            raise err("webhook", f"must be an http:// or https:// URL, not {webhook!r}")

        spec = cls(
            command=command,
            argv=argv,
            root=root,
            name=name,
            cwd=folder,
            path=spec_path,
            grid=grid,
            configs=configs,
            random=rand,
            repeat=repeat,
            seed_param=seed_param,
            on_task_end=hooks["on_task_end"],
            on_sweep_end=hooks["on_sweep_end"],
            webhook=webhook,
            ray=_ray_options(data.get("ray"), err),
            slurm=_slurm_options(data.get("slurm"), err),
            ignore=_ignore(data.get("ignore"), err),
        )
        spec._check_overlaps(err)
        spec._check_ignore(err)
        return spec

    def _check_ignore(self, err: _Errors) -> None:
        """An ignored flag is one of ``command``; a swept value always counts."""
        flags = {_norm(f) for f in _command_flags(self.argv)}
        swept = {_norm(k) for k in self.grid}
        swept |= {_norm(k) for config in self.configs for k in config}
        if self.random is not None:
            swept |= {_norm(k) for k in self.random["space"]}
        if self.seed_param is not None:
            swept.add(_norm(self.seed_param))
        for name in self.ignore:
            if _norm(name) in swept:
                raise err(
                    "ignore",
                    f"{name!r} is swept: its values tell the tasks apart, so "
                    "they count in the keys",
                )
            if _norm(name) not in flags:
                raise err(
                    "ignore",
                    f"'--{name}' is not a flag of command: list flags given "
                    "there (num-workers for --num-workers 4)",
                )

    def key_argv(self) -> list[str]:
        """The command's words that count in the task keys."""
        return self.strip(self.argv)

    def strip(self, argv: Sequence[str]) -> list[str]:
        """``argv`` without the flags that do not count in the keys (and their
        values): those under ``ignore``, and the script's ``volatile``
        arguments that no task sweeps."""
        swept = {_norm(k) for k in self.grid}
        swept |= {_norm(k) for config in self.configs for k in config}
        if self.random is not None:
            swept |= {_norm(k) for k in self.random["space"]}
        ignored = {_norm(n) for n in self.ignore}
        ignored |= {_norm(n) for n in self.volatile} - swept
        if not ignored or not argv:
            return list(argv)
        words: list[str] = [argv[0]]
        rest = iter(argv[1:])
        for word in rest:
            if word.startswith("--") and _norm(word[2:].split("=", 1)[0]) in ignored:
                if "=" not in word:
                    following = next(rest, None)
                    if following is not None and following.startswith("--"):
                        words.append(following)  # a flag without a value
                continue
            words.append(word)
        return words

    def _check_overlaps(self, err: _Errors) -> None:
        """A parameter may come from one place only."""
        sources: dict[str, str] = {}

        def claim(key: str, source: str) -> None:
            norm = _norm(key)
            if norm in sources and sources[norm] != source:
                raise err(
                    source,
                    f"{key!r} is also set by {sources[norm]}: set each "
                    "parameter in one place only",
                )
            sources[norm] = source

        for flag in _command_flags(self.argv):
            sources[_norm(flag)] = f"command ('--{flag}')"
        for key in self.grid:
            claim(key, "grid")
        if self.random is not None:
            for key in self.random["space"]:
                claim(key, "random.space")
        for i, config in enumerate(self.configs):
            for key in config:
                norm = _norm(key)
                if norm in sources and not sources[norm].startswith("configs"):
                    raise err(
                        f"configs[{i}]",
                        f"{key!r} is also set by {sources[norm]}: set each "
                        "parameter in one place only",
                    )
        for key in {k for config in self.configs for k in config}:
            sources.setdefault(_norm(key), "configs")
        if self.seed_param is not None and _norm(self.seed_param) in sources:
            raise err(
                "seed_param",
                f"the repetition sets {self.seed_param!r}, which is also set by "
                f"{sources[_norm(self.seed_param)]}: remove it there, or name "
                "another parameter with seed_param (null: pass no seed)",
            )

    # -- expansion ---------------------------------------------------------------
    def tasks(self) -> TaskList:
        """The numbered tasks: the same list for the same spec, everywhere.

        Each task is made when it is asked for (see :class:`.expand.TaskList`).

        :raises SpecError: too many tasks, or two tasks with the same values.
        """
        if self._tasks is None:
            self._tasks = TaskList(
                self.key_argv(),
                configs=self.configs,
                grid=self.grid,
                random=self.random,
                repeat=self.repeat,
                seed_param=self.seed_param,
                where=self._where(),
                notes=self.notes,
            )
        return self._tasks

    # -- running a task ------------------------------------------------------------
    def task_env(self, task: Task) -> dict[str, str]:
        """The environment variables that make a process run ``task``."""
        return {
            ROOT_ENV: str(self.root),
            SWEEP_ENV["name"]: self.name,
            SWEEP_ENV["task"]: str(task.index),
            SWEEP_ENV["key"]: task.key,
            SWEEP_PARAMS_ENV: task.params_json(),
        }

    def shell_line(self, task: Task) -> str:
        """A line to paste into a shell in :attr:`cwd` that runs ``task``.

        Paths are relative to :attr:`cwd` where possible.
        """
        env = self.task_env(task)
        if self._shell_root is None:
            self._shell_root = _relative(self.root, self.cwd)
        env[ROOT_ENV] = self._shell_root
        words = [f"{k}={shlex.quote(v)}" for k, v in env.items()]
        return " ".join([*words, shlex.join(self.argv)])

    def _where(self) -> str:
        return str(self.path) if self.path is not None else "sweep spec"


def load_spec(path: StrPath) -> Spec:
    """Read and validate a spec file (YAML, or JSON for a ``.json`` file).

    :raises SpecError: the file cannot be read, parsed or used; the message
        names the file and the key.
    """
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise SpecError(
            f"cannot read the sweep spec {os.fspath(path)!r}: {e.strerror}"
        ) from None
    if os.fspath(path).endswith(".json"):
        try:
            data = json.loads(raw)
        except ValueError as e:
            raise SpecError(f"{os.fspath(path)}: invalid JSON: {e}") from None
    else:
        try:
            data = load_yaml(raw, os.fspath(path))
        except ParamsError as e:
            raise SpecError(str(e)) from None
    if data is None:
        raise SpecError(
            f"{os.fspath(path)}: the file is empty; it needs at least 'command'"
        )
    return Spec.from_mapping(data, path=path)


# -- validation helpers -------------------------------------------------------------
class _Errors:
    """Makes :class:`SpecError` messages that name the file and the key."""

    def __init__(self, where: str) -> None:
        self.where = where

    def __call__(self, key: str, problem: str) -> SpecError:
        return SpecError(f"{self.where}: {key}: {problem}")


def _norm(name: str) -> str:
    return name.replace("-", "_")


def _command_flags(argv: Sequence[str]) -> list[str]:
    """The long options given in the command (``--lr 0.1``, ``--lr=0.1``)."""
    flags = []
    for word in argv[1:]:
        if word.startswith("--") and len(word) > 2:
            flags.append(word[2:].split("=", 1)[0])
    return flags


def _ignore(value: Any, err: _Errors) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(
        isinstance(v, str) and v.strip("-") for v in value
    ):
        raise err("ignore", f"must be a list of flags of command, not {value!r}")
    return [v.lstrip("-") for v in value]


def _check_value(value: Any, err: _Errors, key: str) -> Any:
    """A value the script can take: a scalar, or a list of scalars (``nargs``)."""
    scalar = (str, int, float, bool, type(None))
    if isinstance(value, scalar):
        return value
    if isinstance(value, list) and all(isinstance(v, scalar) for v in value):
        return value
    if isinstance(value, (list, dict)):
        raise err(
            key,
            f"{value!r}: values must be numbers, strings, booleans, null or "
            "lists of those (for nargs arguments)",
        )
    raise err(
        key,
        f"{value!r} is a {type(value).__name__}; quote it to pass it as a string",
    )


def _check_param_name(name: Any, err: _Errors, where: str) -> str:
    if not isinstance(name, str) or not name or name.startswith("-"):
        raise err(
            where,
            f"{name!r} is not a parameter name: use the argument's name "
            "without dashes, as in params.yaml (lr, not --lr)",
        )
    return name


def _grid(value: Any, err: _Errors) -> dict[str, list[Any]]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise err("grid", "must map parameter names to lists of values")
    grid: dict[str, list[Any]] = {}
    for name, values in value.items():
        name = _check_param_name(name, err, "grid")
        if not isinstance(values, list):
            values = [values]  # a single value: fixed for every task
        if not values:
            raise err(f"grid.{name}", "is an empty list: the sweep would have no tasks")
        grid[name] = [_check_value(v, err, f"grid.{name}") for v in values]
    return grid


def _configs(value: Any, err: _Errors) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not value:
        raise err("configs", "must be a non-empty list of mappings")
    configs = []
    for i, config in enumerate(value):
        if not isinstance(config, Mapping):
            raise err(f"configs[{i}]", f"must be a mapping, not {config!r}")
        configs.append(
            {
                _check_param_name(k, err, f"configs[{i}]"): _check_value(
                    v, err, f"configs[{i}].{k}"
                )
                for k, v in config.items()
            }
        )
    return configs


def _number(value: Any, err: _Errors, key: str) -> float:
    # YAML 1.1 reads 1e-5 (no dot) as a string: accept it as the number it means
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise err(key, f"{value!r} is not a number")
    if not math.isfinite(value):
        raise err(key, f"{value!r} is not a finite number")
    return value


def _random(value: Any, err: _Errors) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise err("random", "must be a mapping with samples, seed and space")
    unknown = [str(k) for k in value if k not in RANDOM_KEYS]
    if unknown:
        raise err(
            f"random.{unknown[0]}", "unknown key; valid: " + ", ".join(RANDOM_KEYS)
        )
    samples = value.get("samples")
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise err("random.samples", f"must be a whole number >= 1, not {samples!r}")
    seed = value.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise err("random.seed", f"must be a whole number, not {seed!r}")
    space = value.get("space")
    if not isinstance(space, Mapping) or not space:
        raise err("random.space", "must map parameter names to distributions")
    parsed: dict[str, tuple[str, Any]] = {}
    for name, dist in space.items():
        name = _check_param_name(name, err, "random.space")
        key = f"random.space.{name}"
        if not isinstance(dist, Mapping) or len(dist) != 1:
            raise err(
                key,
                "must be one distribution, e.g. {uniform: [0.0, 1.0]}; "
                "known: " + ", ".join(DISTRIBUTIONS),
            )
        ((kind, args),) = dist.items()
        if kind not in DISTRIBUTIONS:
            raise err(
                key,
                f"unknown distribution {kind!r}; known: " + ", ".join(DISTRIBUTIONS),
            )
        parsed[name] = (kind, _dist_args(kind, args, err, f"{key}.{kind}"))
    return {"samples": samples, "seed": seed, "space": parsed}


def _dist_args(kind: str, args: Any, err: _Errors, key: str) -> Any:
    if kind == "choice":
        if not isinstance(args, list) or not args:
            raise err(key, "must be a non-empty list of values")
        return [_check_value(v, err, key) for v in args]
    if not isinstance(args, list) or len(args) != 2:
        raise err(key, f"must be {DISTRIBUTIONS[kind]}, not {args!r}")
    low, high = (_number(v, err, key) for v in args)
    if kind == "randint":
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in args):
            raise err(key, f"bounds must be whole numbers: {args!r}")
        low, high = int(low), int(high)
    if kind == "normal":
        if high <= 0:
            raise err(key, f"the standard deviation must be > 0: {args!r}")
    elif low > high or (kind != "randint" and low == high):
        raise err(key, f"needs low < high: {args!r}")
    if kind == "loguniform" and low <= 0:
        raise err(key, f"needs 0 < low: {args!r}")
    return (low, high)


def _relative(path: pathlib.Path, start: pathlib.Path) -> str:
    try:
        return os.path.relpath(path, start)
    except ValueError:  # another drive (Windows)
        return str(path)
