"""Sweep specs: loading, validation and the expansion into numbered tasks (pure)."""

from __future__ import annotations

import json
import math
import shlex
import textwrap
from pathlib import Path
from typing import Any

import pytest

from exman.record.store import ExmanError
from exman.sweep.plan import TaskState, parse_shard, select
from exman.sweep.spec import Spec, SpecError, Task, load_spec, task_key


def write(tmp_path: Path, text: str, name: str = "sweep.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def spec_of(data: dict[str, Any], tmp_path: Path | None = None) -> Spec:
    return Spec.from_mapping({"command": "python main.py", **data}, base=tmp_path)


# -- expansion -------------------------------------------------------------------------
def test_grid_times_repeat_with_the_repetition_outermost(tmp_path: Path) -> None:
    spec = load_spec(
        write(
            tmp_path,
            """\
            command: python main.py --epochs 3
            grid:
              lr: [0.1, 0.01]
              model: [resnet, vit]
            repeat: 3
            """,
        )
    )
    tasks = spec.tasks()
    assert len(tasks) == 12
    assert [t.index for t in tasks] == list(range(12))
    # task i is configuration i % 4, repetition i // 4 (as PyExpUtils)
    for t in tasks:
        assert t.repetition == t.index // 4 == t.params["seed"]
        first = tasks[t.index % 4].params
        assert {k: v for k, v in t.params.items() if k != "seed"} == {
            k: v for k, v in first.items() if k != "seed"
        }
    assert [t.params for t in tasks[:4]] == [
        {"lr": 0.1, "model": "resnet", "seed": 0},
        {"lr": 0.1, "model": "vit", "seed": 0},
        {"lr": 0.01, "model": "resnet", "seed": 0},
        {"lr": 0.01, "model": "vit", "seed": 0},
    ]
    assert len({t.key for t in tasks}) == 12
    assert spec.name == "sweep"
    assert spec.root == tmp_path / "exman"
    assert spec.cwd == tmp_path


def test_configs_combine_with_the_grid() -> None:
    spec = spec_of(
        {
            "grid": {"lr": [0.1, 0.2]},
            "configs": [{"depth": 2}, {"depth": 4, "width": 64}],
        }
    )
    params = [t.params for t in spec.tasks()]
    assert params == [
        {"depth": 2, "lr": 0.1},
        {"depth": 2, "lr": 0.2},
        {"depth": 4, "width": 64, "lr": 0.1},
        {"depth": 4, "width": 64, "lr": 0.2},
    ]
    assert "seed" not in params[0]  # no repeat: the script's own seed default


def test_scalar_in_grid_is_a_fixed_value_and_lists_need_wrapping() -> None:
    spec = spec_of({"grid": {"epochs": 5, "layers": [[1, 2], [3]]}})
    assert [t.params for t in spec.tasks()] == [
        {"epochs": 5, "layers": [1, 2]},
        {"epochs": 5, "layers": [3]},
    ]


def test_seed_param_renames_or_disables_the_seed() -> None:
    named = spec_of({"repeat": 2, "seed_param": "rng"}).tasks()
    assert [t.params for t in named] == [{"rng": 0}, {"rng": 1}]
    unseeded = spec_of({"repeat": 3, "seed_param": None}).tasks()
    assert [t.params for t in unseeded] == [{}, {}, {}]
    assert len({t.key for t in unseeded}) == 3  # the repetition is in the key
    explicit = spec_of({"repeat": 1}).tasks()
    assert [t.params for t in explicit] == [{"seed": 0}]


def test_the_same_spec_gives_the_same_tasks(tmp_path: Path) -> None:
    text = """\
        command: python main.py
        grid: {lr: [0.1, 0.01]}
        random:
          samples: 6
          seed: 3
          space:
            wd: {loguniform: [1.0e-5, 1.0e-2]}
            dropout: {uniform: [0.0, 0.5]}
            layers: {randint: [2, 8]}
            act: {choice: [relu, gelu]}
            noise: {normal: [0.0, 1.0]}
        repeat: 2
        """
    a = load_spec(write(tmp_path, text, "a.yaml")).tasks()
    b = load_spec(write(tmp_path, text, "b.yaml")).tasks()
    assert [(t.index, t.params, t.key) for t in a] == [
        (t.index, t.params, t.key) for t in b
    ]
    assert len(a) == 2 * 6 * 2


def test_random_samples_are_unique_and_in_their_ranges() -> None:
    space = {
        "wd": {"loguniform": [1.0e-5, 1.0e-2]},
        "dropout": {"uniform": [0.0, 0.5]},
        "layers": {"randint": [2, 8]},
        "act": {"choice": ["relu", "gelu"]},
    }
    spec = spec_of({"random": {"samples": 40, "seed": 0, "space": space}})
    params = [t.params for t in spec.tasks()]
    assert len(params) == 40
    assert len({json.dumps(p, sort_keys=True) for p in params}) == 40
    for p in params:
        assert 1e-5 <= p["wd"] <= 1e-2
        assert 0.0 <= p["dropout"] <= 0.5
        assert isinstance(p["layers"], int) and 2 <= p["layers"] <= 8
        assert p["act"] in ("relu", "gelu")
    assert {p["layers"] for p in params} == set(range(2, 9))  # both ends included
    logs = [math.log10(p["wd"]) for p in params]
    assert min(logs) < -4 and max(logs) > -3  # spread over the decades


def test_random_seed_changes_the_samples_key_order_does_not() -> None:
    space = {"a": {"uniform": [0, 1]}, "b": {"uniform": [0, 1]}}
    first = spec_of({"random": {"samples": 5, "seed": 0, "space": space}}).tasks()
    other = spec_of({"random": {"samples": 5, "seed": 1, "space": space}}).tasks()
    swapped = dict(reversed(list(space.items())))
    same = spec_of({"random": {"samples": 5, "seed": 0, "space": swapped}}).tasks()
    assert [t.params for t in first] != [t.params for t in other]
    assert [t.key for t in first] == [t.key for t in same]


def test_a_discrete_space_smaller_than_the_samples_is_used_whole() -> None:
    space = {"act": {"choice": ["relu", "gelu"]}, "layers": {"randint": [1, 2]}}
    spec = spec_of({"random": {"samples": 10, "space": space}})
    params = [t.params for t in spec.tasks()]
    assert len(params) == 4
    assert len({json.dumps(p, sort_keys=True) for p in params}) == 4
    assert any("only 4 distinct" in note for note in spec.notes)


def test_yaml_exponent_without_a_dot_is_a_number_in_a_distribution() -> None:
    # YAML 1.1 reads 1e-5 as a string
    spec = spec_of(
        {"random": {"samples": 3, "space": {"wd": {"loguniform": ["1e-5", "1e-2"]}}}}
    )
    assert all(1e-5 <= t.params["wd"] <= 1e-2 for t in spec.tasks())


def test_adding_a_grid_value_keeps_the_old_keys() -> None:
    old = spec_of({"grid": {"lr": [0.1, 0.01], "model": ["a", "b"]}, "repeat": 2})
    new = spec_of(
        {"grid": {"lr": [0.1, 0.01, 0.001], "model": ["a", "b"]}, "repeat": 2}
    )
    old_keys = {t.key for t in old.tasks()}
    new_keys = {t.key for t in new.tasks()}
    assert old_keys < new_keys
    assert len(new_keys - old_keys) == 4


def test_the_key_hashes_command_words_and_values_not_their_order() -> None:
    assert task_key(["python", "main.py"], {"a": 1, "b": 2}) == task_key(
        shlex.split("python   main.py"), {"b": 2, "a": 1}
    )
    assert task_key(["python", "main.py"], {"a": 1}) != task_key(
        ["python", "main.py", "--epochs", "3"], {"a": 1}
    )
    assert task_key(["p"], {"a": 1}) != task_key(["p"], {"a": "1"})
    assert len(task_key(["p"], {})) == 16


def test_json_spec_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "grid.json"
    path.write_text(json.dumps({"command": "python main.py", "grid": {"lr": [1, 2]}}))
    spec = load_spec(path)
    assert spec.name == "grid"
    assert [t.params for t in spec.tasks()] == [{"lr": 1}, {"lr": 2}]


# -- errors ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"grid": {"lr": [1]}, "comand": "x"}, ["comand", "valid keys", "command"]),
        ({"command": "python main.py --lr 0.1", "grid": {"lr": [1]}}, ["lr", "--lr"]),
        ({"command": "python main.py --lr=0.1", "grid": {"lr": [1]}}, ["lr", "--lr"]),
        (
            {
                "command": "python main.py --weight-decay 1",
                "grid": {"weight_decay": [1]},
            },
            ["weight_decay"],
        ),
        (
            {
                "command": "python main.py --wd 1",
                "random": {"samples": 2, "space": {"wd": {"uniform": [0, 1]}}},
            },
            ["random.space", "wd"],
        ),
        (
            {
                "grid": {"wd": [1, 2]},
                "random": {"samples": 2, "space": {"wd": {"uniform": [0, 1]}}},
            },
            ["wd", "grid"],
        ),
        ({"grid": {"a": [1]}, "configs": [{"a": 2}]}, ["configs[0]", "'a'"]),
        ({"grid": {"seed": [1, 2]}, "repeat": 2}, ["seed_param", "seed"]),
        ({"grid": {"lr": []}}, ["grid.lr", "empty"]),
        ({"grid": {"--lr": [1]}}, ["grid", "'--lr'", "without dashes"]),
        ({"grid": {"lr": [{"a": 1}]}}, ["grid.lr"]),
        ({"grid": "lr"}, ["grid"]),
        ({"configs": [{"a": 1}, {"a": 1}]}, ["same values"]),
        ({"grid": {"lr": [0.1, 0.1]}}, ["tasks 0 and 1"]),
        ({"repeat": 0}, ["repeat"]),
        ({"repeat": True}, ["repeat"]),
        ({"name": "a/b"}, ["name"]),
        ({"name": ".."}, ["name"]),
        ({"command": ""}, ["command"]),
        ({"command": "python 'unclosed"}, ["command"]),
        ({"webhook": "file:///etc/passwd"}, ["webhook"]),
        ({"random": {"samples": 2}}, ["random.space"]),
        ({"random": {"samples": 0, "space": {"a": {"uniform": [0, 1]}}}}, ["samples"]),
        (
            {"random": {"samples": 2, "space": {"a": {"gauss": [0, 1]}}}},
            ["gauss", "known"],
        ),
        (
            {"random": {"samples": 2, "space": {"a": {"uniform": [1, 0]}}}},
            ["low < high"],
        ),
        (
            {"random": {"samples": 2, "space": {"a": {"loguniform": [0, 1]}}}},
            ["0 < low"],
        ),
        ({"random": {"samples": 2, "space": {"a": {"randint": [0.5, 3]}}}}, ["whole"]),
        ({"random": {"samples": 2, "space": {"a": {"uniform": ["x", 1]}}}}, ["'x'"]),
        ({"random": {"samples": 2, "space": {"a": {"choice": []}}}}, ["non-empty"]),
        (
            {"random": {"samples": 2, "space": {"a": {"uniform": [0, 1]}}, "n": 1}},
            ["n"],
        ),
    ],
)
def test_spec_errors_name_the_key(data: dict[str, Any], words: list[str]) -> None:
    full = {"command": "python main.py", **data}
    with pytest.raises(SpecError) as info:
        Spec.from_mapping(full, path="/x/sweep.yaml").tasks()
    message = str(info.value)
    assert message.startswith("/x/sweep.yaml: ")
    for word in words:
        assert word in message


def test_an_impossible_number_of_unique_samples_is_an_error() -> None:
    spec = spec_of(
        {"random": {"samples": 5, "space": {"a": {"uniform": [1.0, 1.000000000001]}}}}
    )
    # every draw rounds to 1.0 (10 significant digits): five unique never come
    with pytest.raises(SpecError, match="only 1 distinct samples"):
        spec.tasks()


def test_yaml_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "command: python main.py\ngrid:\n  lr: [0.1\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(path) in str(info.value) and "line" in str(info.value)


def test_a_date_must_be_quoted(tmp_path: Path) -> None:
    path = write(tmp_path, "command: python main.py\ngrid:\n  day: [2024-01-01]\n")
    with pytest.raises(SpecError, match="quote it"):
        load_spec(path)


@pytest.mark.parametrize("text", ["", "- a\n- b\n"])
def test_an_empty_or_list_file_is_an_error(tmp_path: Path, text: str) -> None:
    with pytest.raises(SpecError, match=r"sweep\.yaml"):
        load_spec(write(tmp_path, text))


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read"):
        load_spec(tmp_path / "nope.yaml")


# -- the command line of a task --------------------------------------------------------
AWKWARD = ["two words", "it's", 'say "hi"', "a;b", "échelle ✓", "../..", "$HOME", ""]


@pytest.mark.parametrize("value", AWKWARD)
def test_shell_line_carries_the_exact_values(tmp_path: Path, value: str) -> None:
    spec = spec_of(
        {"grid": {"model": [value], "layers": [[1, 2]], "wd": [None]}}, tmp_path
    )
    task = spec.tasks()[0]
    words = shlex.split(spec.shell_line(task))
    env = dict(w.split("=", 1) for w in words if "=" in w and w[0].isupper())
    assert json.loads(env["EXMAN_SWEEP_PARAMS"]) == task.params
    assert task.params == {"model": value, "layers": [1, 2], "wd": None}
    assert env["EXMAN_SWEEP_KEY"] == task.key
    assert env["EXMAN_SWEEP_TASK"] == "0"
    assert env["EXMAN_ROOT"] == "exman"
    assert words[-2:] == ["python", "main.py"]


def test_root_and_name_come_from_the_spec(tmp_path: Path) -> None:
    path = write(
        tmp_path, "command: python main.py\nroot: ../runs here\nname: my sweep\n"
    )
    spec = load_spec(path)
    assert spec.root == tmp_path / ".." / "runs here"
    assert spec.name == "my sweep"
    assert spec.task_env(spec.tasks()[0])["EXMAN_SWEEP"] == "my sweep"


# -- selection -------------------------------------------------------------------------
def states(pattern: str) -> list[TaskState]:
    names = {
        "c": "completed",
        "f": "failed",
        "r": "running",
        "p": "pending",
        "i": "interrupted",
    }
    return [
        TaskState(Task(i, {"i": i}, f"k{i}"), names[ch]) for i, ch in enumerate(pattern)
    ]


def picked(selection: Any) -> list[int]:
    return [s.task.index for s in selection.run]


def test_select_skips_done_failed_and_running() -> None:
    all_states = states("cfrpi")
    default = select(all_states)
    assert picked(default) == [3, 4]  # pending and interrupted run again
    assert {k: [s.task.index for s in v] for k, v in default.skipped.items()} == {
        "completed": [0],
        "failed": [1],
        "running": [2],
    }
    assert picked(select(all_states, retry_failed=True)) == [1, 3, 4]
    assert picked(select(all_states, force=True)) == [0, 1, 3, 4]  # never running


def test_index_picks_exactly_one_task() -> None:
    assert picked(select(states("ppp"), index=1)) == [1]
    assert picked(select(states("pcp"), index=1)) == []
    assert picked(select(states("pcp"), index=1, force=True)) == [1]
    with pytest.raises(ExmanError, match="task 3 does not exist"):
        select(states("ppp"), index=3)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 20])
def test_shards_are_disjoint_and_complete(n: int) -> None:
    all_states = states("p" * 17)
    shares = [picked(select(all_states, shard=(k, n))) for k in range(n)]
    flat = [i for share in shares for i in share]
    assert sorted(flat) == list(range(17))
    assert len(flat) == len(set(flat))
    sizes = [len(s) for s in shares]
    assert max(sizes) - min(sizes) <= 1  # balanced


@pytest.mark.parametrize("text", ["2/2", "-1/2", "a/b", "1", "0/0", "1/2/3"])
def test_bad_shards_are_refused(text: str) -> None:
    with pytest.raises(ExmanError, match="shard"):
        parse_shard(text)


def test_shard_parses() -> None:
    assert parse_shard("1/4") == (1, 4)


# -- the documentation ------------------------------------------------------------
DOCS = Path(__file__).resolve().parent.parent / "docs"


def yaml_blocks(page: Path) -> list[str]:
    """The ``.. code-block:: yaml`` blocks of a reStructuredText page."""
    blocks, current = [], None
    for line in [*page.read_text(encoding="utf-8").splitlines(), ""]:
        if line.strip() == ".. code-block:: yaml":
            current = []
            continue
        if current is not None:
            if line and not line.startswith(" "):
                blocks.append(textwrap.dedent("\n".join(current)))
                current = None
            else:
                current.append(line)
    return blocks


def test_the_specs_in_the_docs_expand(tmp_path: Path) -> None:
    specs = [b for b in yaml_blocks(DOCS / "sweep.rst") if "command:" in b]
    assert len(specs) >= 2
    counts = [len(load_spec(write(tmp_path, text)).tasks()) for text in specs]
    # the first sweep: 2 lr x 2 model x 2 seeds; the reference: (2 configs x 4
    # grid points x 8 samples) x 3 repetitions
    assert counts[:2] == [8, 2 * 4 * 8 * 3]


def test_the_example_spec_expands() -> None:
    spec = load_spec(DOCS.parent / "examples" / "sweep.yaml")
    assert len(spec.tasks()) == 8
