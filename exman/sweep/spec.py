"""The sweep spec: what to run, read and checked.

A spec is a YAML (or JSON) mapping: the command, the values (``configs``,
``grid``, ``random``, ``repeat``), the root, hooks and launcher sections.
:meth:`Spec.tasks` gives its numbered tasks (:mod:`.expand`), each with a
stable key, a hash of the command and the task's values, that its run
records; a re-run of the sweep knows what is done from these keys. A
``search`` section (:mod:`.space`) takes the place of the values: its
tasks are the trials of a study (:mod:`.search`).
"""

from __future__ import annotations

import json
import os
import pathlib
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

from ..record.config import SWEEP_PARAMS_ENV
from ..record.params import ParamsError, load_yaml
from ..record.run import SWEEP_ENV
from ..record.stop import STOP_ENV
from ..record.store import ROOT_ENV, STATE_DIR, ExmanError, check_name
from .expand import SpecError, Task, TaskList, task_key
from .launchers.ray_options import check_options as _ray_options
from .launchers.slurm_options import check_options as _slurm_options
from .space import NOT_WITH_SEARCH, Search, search_section
from .values import (
    DISTRIBUTIONS,
    Errors,
    command_flags,
    config_list,
    grid_values,
    ignore_list,
    norm_name,
    random_section,
)

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
    "resume",
    "max_attempts",
    "ray",
    "slurm",
    "search",
)
DEFAULT_ROOT = "exman"
#: ``root/.exman/sweeps/<name>``: a sweep's record, logs and study
SWEEPS_DIR = "sweeps"
#: under a search's folder: the files that ask a trial to stop early
STOP_DIR = "stop"


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
    #: a task stopped by ``--timeout`` starts again and continues its run
    resume: bool = False
    #: with ``resume``, the attempts at a task in all
    max_attempts: int = 3
    #: the ``search:`` section: an adaptive search instead of a fixed list
    search: Search | None = None
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
        err = Errors(where)
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

        search = search_section(data.get("search"), err)
        if search is not None:
            both = [k for k in NOT_WITH_SEARCH if k in data]
            if both:
                raise err(
                    both[0],
                    "a search makes its own tasks from search.space: move the "
                    "parameter there, or fix its value in command",
                )
        grid = grid_values(data.get("grid"), err)
        configs = config_list(data.get("configs"), err)
        rand = random_section(data.get("random"), err)
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

        resume = data.get("resume", False)
        if not isinstance(resume, bool):
            raise err("resume", f"must be true or false, not {resume!r}")
        max_attempts = data.get("max_attempts", 3)
        if (
            isinstance(max_attempts, bool)
            or not isinstance(max_attempts, int)
            or max_attempts < 1
        ):
            raise err(
                "max_attempts", f"must be a whole number >= 1, not {max_attempts!r}"
            )

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
            ignore=ignore_list(data.get("ignore"), err),
            resume=resume,
            max_attempts=max_attempts,
            search=search,
        )
        spec._check_overlaps(err)
        spec._check_ignore(err)
        return spec

    def _check_ignore(self, err: Errors) -> None:
        """An ignored flag is one of ``command``; a swept value always counts."""
        flags = {norm_name(f) for f in command_flags(self.argv)}
        swept = {norm_name(k) for k in self.grid}
        swept |= {norm_name(k) for config in self.configs for k in config}
        if self.random is not None:
            swept |= {norm_name(k) for k in self.random["space"]}
        if self.search is not None:
            swept |= {norm_name(k) for k in self.search.names}
        if self.seed_param is not None:
            swept.add(norm_name(self.seed_param))
        for name in self.ignore:
            if norm_name(name) in swept:
                raise err(
                    "ignore",
                    f"{name!r} is swept: its values tell the tasks apart, so "
                    "they count in the keys",
                )
            if norm_name(name) not in flags:
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
        swept = {norm_name(k) for k in self.grid}
        swept |= {norm_name(k) for config in self.configs for k in config}
        if self.random is not None:
            swept |= {norm_name(k) for k in self.random["space"]}
        if self.search is not None:
            swept |= {norm_name(k) for k in self.search.names}
        ignored = {norm_name(n) for n in self.ignore}
        ignored |= {norm_name(n) for n in self.volatile} - swept
        if not ignored or not argv:
            return list(argv)
        words: list[str] = [argv[0]]
        rest = iter(argv[1:])
        for word in rest:
            if (
                word.startswith("--")
                and norm_name(word[2:].split("=", 1)[0]) in ignored
            ):
                if "=" not in word:
                    following = next(rest, None)
                    if following is not None and following.startswith("--"):
                        words.append(following)  # a flag without a value
                continue
            words.append(word)
        return words

    def _check_overlaps(self, err: Errors) -> None:
        """A parameter may come from one place only."""
        sources: dict[str, str] = {}

        def claim(key: str, source: str) -> None:
            norm = norm_name(key)
            if norm in sources and sources[norm] != source:
                raise err(
                    source,
                    f"{key!r} is also set by {sources[norm]}: set each "
                    "parameter in one place only",
                )
            sources[norm] = source

        for flag in command_flags(self.argv):
            sources[norm_name(flag)] = f"command ('--{flag}')"
        for key in self.grid:
            claim(key, "grid")
        if self.random is not None:
            for key in self.random["space"]:
                claim(key, "random.space")
        if self.search is not None:
            for key in self.search.names:
                claim(key, "search.space")
        for i, config in enumerate(self.configs):
            for key in config:
                norm = norm_name(key)
                if norm in sources and not sources[norm].startswith("configs"):
                    raise err(
                        f"configs[{i}]",
                        f"{key!r} is also set by {sources[norm]}: set each "
                        "parameter in one place only",
                    )
        for key in {k for config in self.configs for k in config}:
            sources.setdefault(norm_name(key), "configs")
        if self.seed_param is not None and norm_name(self.seed_param) in sources:
            raise err(
                "seed_param",
                f"the repetition sets {self.seed_param!r}, which is also set by "
                f"{sources[norm_name(self.seed_param)]}: remove it there, or name "
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
        env = {
            ROOT_ENV: str(self.root),
            SWEEP_ENV["name"]: self.name,
            SWEEP_ENV["task"]: str(task.index),
            SWEEP_ENV["key"]: task.key,
            SWEEP_PARAMS_ENV: task.params_json(),
        }
        caller_root = os.environ.get(ROOT_ENV)
        if caller_root:  # for what the task runs in turn (see leave_sweep)
            env[SWEEP_ENV["caller_root"]] = caller_root
        if self.search is not None:
            env[STOP_ENV] = str(self.stop_file(task.key))
        return env

    def stop_file(self, key: str) -> pathlib.Path:
        """The file whose existence asks the trial with ``key`` to stop early."""
        return self.root / STATE_DIR / SWEEPS_DIR / self.name / STOP_DIR / key

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
def _relative(path: pathlib.Path, start: pathlib.Path) -> str:
    try:
        return os.path.relpath(path, start)
    except ValueError:  # another drive (Windows)
        return str(path)
