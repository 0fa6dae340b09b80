"""The static source's expansion of a spec into numbered tasks, made lazily.

Task ``i`` is configuration ``i % P``, repetition ``i // P`` (as in
PyExpUtils), where the ``P`` configurations are the explicit ``configs`` ×
the ``grid`` × the ``random`` samples, in that order, the last grid axis
turning fastest. :class:`TaskList` computes any task from its number, so a
grid of a million tasks costs no memory until a task is asked for; the
number of tasks is known, and an absurd one refused, before any work.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, overload

from ..record.store import ExmanError

__all__ = [
    "KEY_SIZE",
    "MAX_TASKS",
    "SpecError",
    "Task",
    "TaskList",
    "command_changes",
    "task_key",
]

#: the length of a task's key
KEY_SIZE = 16
#: more tasks than this is a mistake (a grid axis too many), not a sweep
MAX_TASKS = 10_000_000
#: up to this many tasks, a duplicate found in the grid or the configs is
#: looked for task by task, to name the two tasks
CHECK_ONE_BY_ONE = 200_000
#: significant digits kept of a random float: the same on every libm
FLOAT_DIGITS = 10
#: how many draws a random sample gets to be unique, per sample asked for
DRAWS_PER_SAMPLE = 50


class SpecError(ExmanError):
    """A spec that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class Task:
    """One task of a sweep: a configuration and its repetition.

    :param index: the task number (from 0), the same on every machine.
    :param params: the values passed to the script (``EXMAN_SWEEP_PARAMS``).
    :param key: the stable hash of the command and ``params``.
    :param repetition: which repetition of its configuration (from 0).
    """

    index: int
    params: dict[str, Any]
    key: str
    repetition: int = 0

    def params_json(self) -> str:
        """``params`` as the JSON object the script reads."""
        return json.dumps(self.params, ensure_ascii=False)


#: one encoder for every key (``json.dumps`` with options makes one a call)
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(data: Any) -> str:
    """``data`` as JSON that is the same whatever the order of its keys."""
    return _CANONICAL.encode(data)


def task_key(
    argv: Sequence[str], params: Mapping[str, Any], repetition: int = 0
) -> str:
    """The stable key of a task: 16 hex digits of a SHA-256.

    It hashes the command split into words (so spacing does not matter) and
    the values in canonical JSON (so the order of the keys does not matter).
    ``repetition`` enters only when it is not carried by a parameter.
    """
    data: dict[str, Any] = {"command": list(argv), "params": dict(params)}
    if repetition:
        data["repetition"] = repetition
    return hashlib.sha256(canonical(data).encode("utf-8")).hexdigest()[:16]


def command_changes(old: Sequence[str], new: Sequence[str]) -> list[str]:
    """What differs between two commands, as a person names it: ``--epochs``
    changed (2 -> 3), ``--fast`` added, the script changed."""

    def flags(argv: Sequence[str]) -> tuple[list[str], dict[str, str | None]]:
        words: list[str] = []
        found: dict[str, str | None] = {}
        i = 1
        while i < len(argv):
            word = argv[i]
            if word.startswith("--") and len(word) > 2:
                name, eq, value = word.partition("=")
                if not eq and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                    value, i = argv[i + 1], i + 1
                found[name] = value if eq or value else None
            else:
                words.append(word)
            i += 1
        return [argv[0], *words] if argv else words, found

    old_words, old_flags = flags(old)
    new_words, new_flags = flags(new)
    changes = []
    if old_words != new_words:
        changes.append(
            f"the command changed ({' '.join(old_words)} -> {' '.join(new_words)})"
        )
    for name in sorted(old_flags.keys() | new_flags.keys()):
        if name not in new_flags:
            changes.append(f"{name} was removed")
        elif name not in old_flags:
            changes.append(f"{name} was added")
        elif old_flags[name] != new_flags[name]:
            changes.append(f"{name} changed ({old_flags[name]} -> {new_flags[name]})")
    return changes


class TaskList(Sequence[Task]):
    """The numbered tasks of a spec, each made when it is asked for.

    :param random: the spec's ``random`` section (samples, seed, space).
    :param where: the spec's file, named in errors.
    :param notes: remarks on the expansion are added to it.
    :raises SpecError: more than :data:`MAX_TASKS` tasks (said before any
        work), or two tasks with the same values.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        configs: Sequence[dict[str, Any]],
        grid: Mapping[str, Sequence[Any]],
        random: Mapping[str, Any] | None,
        repeat: int,
        seed_param: str | None,
        where: str,
        notes: list[str],
    ) -> None:
        self.argv = list(argv)
        self.configs = list(configs) or [{}]
        self.axes = [(name, list(values)) for name, values in grid.items()]
        self.repeat = repeat
        self.seed_param = seed_param
        self.where = where
        self.points = math.prod(len(values) for _, values in self.axes)
        factors = [f"{len(values)} {name}" for name, values in self.axes]
        if len(self.configs) > 1:
            factors.insert(0, f"{len(self.configs)} configs")
        samples = 1
        if random is not None:
            space = random["space"]
            found = discrete_size(space)
            samples = (
                random["samples"] if found is None else min(found, random["samples"])
            )
            factors.append(f"{samples} random samples")
        if repeat > 1:
            factors.append(f"repeat {repeat}")
        size = len(self.configs) * self.points * samples * repeat
        check_size(size, where, " × ".join(factors))
        self.samples = (
            [{}]
            if random is None
            else draw_samples(
                random["space"], random["samples"], random["seed"], where, notes
            )
        )
        self.per_repetition = len(self.configs) * self.points * len(self.samples)
        self.size = self.per_repetition * repeat
        self._last: Task | None = None
        self._keys: bytes | None = None  # every task's key, when known (.keys)
        # each axis with the number of grid points between two of its values
        sizes = [len(values) for _, values in self.axes]
        self._strides = [
            (name, values, math.prod(sizes[i + 1 :]))
            for i, (name, values) in enumerate(self.axes)
        ]
        # task_key's JSON up to the values, made once: the command is the same
        # for every task
        self._head = '{"command":' + canonical(self.argv) + ',"params":'
        self._check_unique()

    def __len__(self) -> int:
        return self.size

    @overload
    def __getitem__(self, index: int) -> Task: ...

    @overload
    def __getitem__(self, index: slice) -> list[Task]: ...

    def __getitem__(self, index: int | slice) -> Task | list[Task]:
        if isinstance(index, slice):
            return [self.task(i) for i in range(*index.indices(self.size))]
        if index < 0:
            index += self.size
        if not 0 <= index < self.size:
            raise IndexError(f"task {index} out of range 0..{self.size - 1}")
        return self.task(index)

    def __iter__(self) -> Iterator[Task]:
        for i in range(self.size):
            yield self.task(i)

    def task(self, index: int) -> Task:
        """Task number ``index`` (0 <= index < len)."""
        last = self._last
        if last is not None and last.index == index:
            return last  # the same task, read twice in a row (state, then line)
        params, rep = self._values(index)
        if self._keys is not None:
            key = self._keys[KEY_SIZE * index : KEY_SIZE * (index + 1)].decode("ascii")
        else:
            key = self._key(params, rep)
        task = self._last = Task(index, params, key, rep)
        return task

    def _key(self, params: dict[str, Any], rep: int) -> str:
        hidden = rep if self.seed_param is None else 0
        # task_key(self.argv, params, hidden), without encoding argv again
        tail = f',"repetition":{hidden}}}' if hidden else "}"
        text = self._head + _CANONICAL.encode(params) + tail
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def definition(self) -> str:
        """What the keys of the tasks follow from, as one string."""
        axes = [[name, values] for name, values in self.axes]
        parts = [self._head, self.configs, axes, self.samples]
        return canonical([*parts, self.repeat, self.seed_param])

    def keys(self, known: Mapping[int, Task] = {}) -> bytes:
        """Every task's key, in order (:data:`KEY_SIZE` ASCII bytes each).

        :param known: tasks already made, whose keys are not made again.
        """
        if self._keys is not None:
            return self._keys
        return "".join(
            known[i].key if i in known else self._key(*self._values(i))
            for i in range(self.size)
        ).encode("ascii")

    def use_keys(self, keys: bytes) -> None:
        """Take the tasks' keys from ``keys`` (as :meth:`keys` gives them).

        :raises ValueError: not one key per task.
        """
        if len(keys) != KEY_SIZE * self.size:
            raise ValueError(f"{len(keys)} bytes are not {self.size} keys")
        self._keys = keys
        self._last = None

    def key_with(self, argv: Sequence[str], index: int) -> str:
        """The key task ``index`` would have with the command ``argv``."""
        params, rep = self._values(index)
        return task_key(argv, params, rep if self.seed_param is None else 0)

    def _values(self, index: int) -> tuple[dict[str, Any], int]:
        rep, rest = divmod(index, self.per_repetition)
        samples = self.samples
        config, rest = divmod(rest, self.points * len(samples))
        point, sample = divmod(rest, len(samples))
        values = dict(self.configs[config])
        for name, axis, stride in self._strides:
            values[name] = axis[point // stride % len(axis)]
        if samples[sample]:  # a grid has one empty sample
            values.update(samples[sample])
        if self.seed_param is not None:
            values[self.seed_param] = rep
        return values, rep

    def _check_unique(self) -> None:
        """No two tasks have the same values.

        The parts of a task's values come from disjoint parameters (a config,
        a grid point, a sample, the repetition), so two tasks are the same
        only where a part repeats: a repeated grid value or config. Where the
        sweep is small, the first two such tasks are named.
        """
        try:
            for name, values in self.axes:
                _unique(values, f"{self.where}: grid.{name}", "the value")
            _unique(self.configs, f"{self.where}: configs", "the config")
        except SpecError:
            if self.size > CHECK_ONE_BY_ONE:
                raise
        else:
            return
        seen: dict[str, int] = {}
        for task in self:
            if task.key in seen:
                raise SpecError(
                    f"{self.where}: tasks {seen[task.key]} and {task.index} have "
                    f"the same values {canonical(task.params)}: remove the "
                    "duplicate from configs or grid"
                )
            seen[task.key] = task.index


def _unique(items: Sequence[Any], where: str, what: str) -> None:
    seen: set[str] = set()
    for item in items:
        text = canonical(item)
        if text in seen:
            raise SpecError(
                f"{where}: {what} {text} is there twice: tasks would repeat; "
                "remove the duplicate"
            )
        seen.add(text)


def check_size(size: int, where: str, factors: str = "") -> None:
    """Refuse a sweep of more than :data:`MAX_TASKS` tasks, before any work.

    :raises SpecError: too many tasks; the message says where they come from.
    """
    if size > MAX_TASKS:
        detail = f" ({factors})" if factors else ""
        raise SpecError(
            f"{where}: the sweep has {size:,} tasks{detail}, more than the "
            f"{MAX_TASKS:,} a sweep may have: split it into several specs, or "
            "use random samples of the space"
        )


# -- random samples ---------------------------------------------------------------
def draw_samples(
    space: Mapping[str, tuple[str, Any]],
    wanted: int,
    seed: int,
    where: str,
    notes: list[str],
) -> list[dict[str, Any]]:
    """``wanted`` distinct samples of ``space``, the same for the same seed.

    A discrete space with no more than ``wanted`` points is used whole (and
    ``notes`` says so).

    :raises SpecError: the space does not hold ``wanted`` distinct samples.
    """
    names = sorted(space)  # the file's key order must not change the draws
    size = discrete_size(space)
    if size is not None and size <= wanted:
        if size < wanted:
            notes.append(
                f"random: the space holds only {size} distinct configurations; "
                f"all {size} are used instead of {wanted} samples"
            )
        choices = [_support(*space[n]) for n in names]
        return [dict(zip(names, combo)) for combo in itertools.product(*choices)]
    rng = random.Random(seed)
    samples: list[dict[str, Any]] = []
    seen: set[str] = set()
    for _ in range(wanted * DRAWS_PER_SAMPLE):
        sample = {n: _draw(rng, *space[n]) for n in names}
        text = canonical(sample)
        if text not in seen:
            seen.add(text)
            samples.append(sample)
            if len(samples) == wanted:
                return samples
    raise SpecError(
        f"{where}: random: found only {len(samples)} distinct samples "
        f"of {wanted} in {wanted * DRAWS_PER_SAMPLE} draws: widen the space "
        "or ask for fewer samples"
    )


def discrete_size(space: Mapping[str, tuple[str, Any]]) -> int | None:
    """How many distinct samples the space holds, None when it is continuous."""
    size = 1
    for kind, args in space.values():
        if kind == "choice":
            size *= len({canonical(v) for v in args})
        elif kind == "randint":
            size *= args[1] - args[0] + 1
        else:
            return None
    return size


def _support(kind: str, args: Any) -> list[Any]:
    if kind == "randint":
        return list(range(args[0], args[1] + 1))
    unique: dict[str, Any] = {}
    for v in args:
        unique.setdefault(canonical(v), v)
    return list(unique.values())


def _round(x: float) -> float:
    return float(f"{x:.{FLOAT_DIGITS}g}")


def _draw(rng: random.Random, kind: str, args: Any) -> Any:
    if kind == "choice":
        return args[rng.randrange(len(args))]
    if kind == "randint":
        return rng.randint(args[0], args[1])
    if kind == "uniform":
        return _round(rng.uniform(args[0], args[1]))
    if kind == "loguniform":
        return _round(math.exp(rng.uniform(math.log(args[0]), math.log(args[1]))))
    return _round(rng.gauss(args[0], args[1]))  # normal
