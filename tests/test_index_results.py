"""What came out of the runs in the Index: result columns in info(), every
logged record in metrics(), means and deviations over seeds in aggregate()."""

from __future__ import annotations

import json
import math
import os
import pathlib
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from _index_runs import make_run

from exman.index import DamagedMetricsWarning, Index, SkippedRunWarning
from exman.look import cache, outcome
from exman.record.metrics import Recorder
from exman.record.run import Run
from exman.record.store import ExmanError


def write_outcome(
    folder: pathlib.Path,
    metrics: list[dict[str, Any]] = (),  # type: ignore[assignment]
    **results: Any,
) -> None:
    """Log ``metrics`` and set ``results`` through exman's own writer."""
    recorder = Recorder(folder)
    for record in metrics:
        record = dict(record)
        recorder.log(record.pop("step", None), **record)
    recorder.close()
    if results:
        recorder.result(**results)


def cells(series: pd.Series) -> list[Any]:
    return [None if (isinstance(v, float) and math.isnan(v)) else v for v in series]


@pytest.fixture
def trusting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs written a moment ago count as settled: the cache trusts them."""
    monkeypatch.setattr(cache, "RACY_NS", -(10**15))


# -- info(): result columns ---------------------------------------------------
def test_results_and_last_metrics_are_typed_columns(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "exman"
    a = make_run(root, {"lr": 0.1, "model": "mlp"})
    write_outcome(
        a,
        [{"loss": 2.0, "acc": 0.5}, {"loss": 1.0, "acc": 0.75}],
        best=3,
        ok=True,
        tag="x",
        curve=[1, 2],
        final=0.5,
    )
    b = make_run(root, {"lr": 0.2, "model": "mlp"})
    write_outcome(b, [{"loss": 4.0}], best=5, ok=False, tag="y", curve=[3], final=1)
    make_run(root, {"lr": 0.3, "model": "mlp"})  # no outcome at all
    df = Index(root).info()
    columns = list(df.columns)
    # after the parameters, before the run's own columns
    assert columns.index("model") < columns.index("loss") < columns.index("status")
    assert df["best"].dtype == "float64" and cells(df.best) == [3, 5, None]
    assert df["final"].dtype == "float64" and cells(df.final) == [0.5, 1.0, None]
    assert df["loss"].dtype == "float64" and cells(df.loss) == [1.0, 4.0, None]
    assert cells(df.acc) == [0.75, None, None]  # metrics: the last value
    assert cells(df.ok) == [True, False, None]
    assert cells(df.tag) == ["x", "y", None] and df.tag.dtype != object
    assert cells(df.curve) == [[1, 2], [3], None]
    assert "step" not in columns  # a field of each record, not a metric


def test_column_types_equal_those_of_parameters(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "exman"
    for value in (1, 2):
        write_outcome(make_run(root, {"p": value}), r=value)
    df = Index(root).info()
    assert df["r"].dtype == df["p"].dtype == "int64"


def test_a_result_wins_over_the_metric_of_its_name(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "exman"
    folder = make_run(root, {"lr": 0.1})
    write_outcome(folder, [{"loss": 3.0}, {"loss": 2.0}], loss=2.5)
    assert Index(root).info().loss.tolist() == [2.5]


@pytest.mark.parametrize(
    "name", ["val loss", 'say "hi"', "a;b", "größe", "../up", "λ/2", "x\ny"]
)
def test_awkward_names(tmp_path: pathlib.Path, name: str) -> None:
    root = tmp_path / "exman"
    write_outcome(make_run(root, {"lr": 0.1}), [{name: 1.5}], **{name + "!": 2})
    df = Index(root).info()
    assert df[name].tolist() == [1.5] and df[name + "!"].tolist() == [2]
    assert Index(root).metrics(name)[name].tolist() == [1.5]


def test_last_values_come_from_the_end_of_a_long_file(tmp_path: pathlib.Path) -> None:
    """Only the tail is read: a metric logged once at the start of a long
    file is not found there, but metrics() has it."""
    root = tmp_path / "exman"
    folder = make_run(root, {"lr": 0.1})
    records = [{"early": 1.0}] + [{"loss": 1 / (i + 1)} for i in range(5000)]
    records += [{"val": 0.25}] + [{"loss": 0.0001, "acc": 0.5}] * 3
    write_outcome(folder, records)
    assert (folder / "metrics.jsonl").stat().st_size > 10 * outcome.TAIL_BYTES
    row = Index(root).info().iloc[0]
    assert row["loss"] == 0.0001 and row["acc"] == 0.5 and row["val"] == 0.25
    assert "early" not in row
    assert Index(root).metrics("early")["early"].tolist() == [1.0]


@pytest.mark.parametrize("result", ["lr", "status", "id", "root", "time", "task"])
def test_a_hand_written_result_named_like_a_column_is_prefixed(
    tmp_path: pathlib.Path, result: str
) -> None:
    """exman refuses such names when writing; a file written by hand may have one."""
    root = tmp_path / "exman"
    folder = make_run(root, {"lr": 0.1})
    (folder / "results.json").write_text(json.dumps({result: 7, "ok": 1}))
    df = Index(root).info()
    assert df[f"result_{result}"].tolist() == [7] and df.ok.tolist() == [1]
    assert df.lr.tolist() == [0.1] and df.status.tolist() == ["completed"]


@pytest.mark.parametrize(
    "text", ["{not json", "[1, 2]", '"a string"', "\xff\xfe", "{}{}"]
)
def test_a_damaged_results_file_keeps_the_run_with_a_warning(
    tmp_path: pathlib.Path, text: str
) -> None:
    root = tmp_path / "exman"
    folder = make_run(root, {"lr": 0.1})
    write_outcome(folder, [{"loss": 1.0}])
    (folder / "results.json").write_bytes(text.encode("latin-1"))
    with pytest.warns(SkippedRunWarning, match=f"{folder.name}.*results.json"):
        df = Index(root).info()
    assert df.lr.tolist() == [0.1] and df.loss.tolist() == [1.0]


def test_a_fifo_for_metrics_does_not_hang_the_load(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "exman"
    folder = make_run(root, {"lr": 0.1})
    os.mkfifo(folder / "metrics.jsonl")
    os.mkfifo(folder / "results.json")
    with pytest.warns(SkippedRunWarning, match="results.json"):
        df = Index(root).info()
    assert df.lr.tolist() == [0.1] and "loss" not in df


def test_a_truncated_last_line_is_left_out(tmp_path: pathlib.Path) -> None:
    """A crash in the middle of a write leaves half a line: no warning
    (pytest turns warnings into errors), the records before it are kept."""
    root = tmp_path / "exman"
    folder = make_run(root, {"lr": 0.1})
    write_outcome(folder, [{"step": 0, "loss": 1.0}, {"step": 1, "loss": 0.5}])
    with open(folder / "metrics.jsonl", "a") as f:
        f.write('{"step": 2, "time": 1.0, "lo')
    assert Index(root).info().loss.tolist() == [0.5]
    frame = Index(root).metrics()
    assert frame.step.tolist() == [0, 1] and frame.loss.tolist() == [1.0, 0.5]


def test_damaged_lines_are_skipped_with_one_warning(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "exman"
    folder = make_run(root, {"lr": 0.1})
    write_outcome(folder, [{"step": 0, "loss": 1.0}])
    with open(folder / "metrics.jsonl", "a") as f:
        f.write("garbage\n[1, 2]\n\n")
    write_outcome(folder, [{"step": 3, "loss": 0.25}])
    assert Index(root).info().loss.tolist() == [0.25]
    with pytest.warns(DamagedMetricsWarning) as caught:
        frame = Index(root).metrics()
    assert len(caught) == 1
    assert folder.name in str(caught[0].message)
    assert "line 2, 3" in str(caught[0].message)
    assert frame.step.tolist() == [0, 3] and frame.loss.tolist() == [1.0, 0.25]


# -- the cache -----------------------------------------------------------------
@pytest.mark.usefixtures("trusting")
def test_a_result_written_after_a_load_is_seen(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "exman"
    folder = make_run(root, {"lr": 0.1})
    make_run(root, {"lr": 0.2})
    assert "acc" not in Index(root).info()
    Run(folder).result(acc=0.5)  # results.json is renamed into place
    assert cells(Index(root).info().acc) == [0.5, None]
    Run(folder).result(acc=0.75)
    assert cells(Index(root).info().acc) == [0.75, None]


@pytest.mark.usefixtures("trusting")
def test_a_running_run_shows_its_newest_metrics(tmp_path: pathlib.Path) -> None:
    """Appends to metrics.jsonl leave the folder's ctime alone; a running
    run's outcome is read at every load all the same."""
    root = tmp_path / "exman"
    done = make_run(root, {"lr": 0.1})
    running = make_run(root, {"lr": 0.2}, status="running")
    write_outcome(done, [{"loss": 9.0}])
    write_outcome(running, [{"loss": 1.0}])
    assert Index(root).info().loss.tolist() == [9.0, 1.0]
    ctime = running.stat().st_ctime_ns
    write_outcome(running, [{"loss": 0.5, "acc": 0.1}])
    assert running.stat().st_ctime_ns == ctime  # the cache cannot see it
    df = Index(root).info()
    assert df.loss.tolist() == [9.0, 0.5] and cells(df.acc) == [None, 0.1]
    assert df.status.tolist() == ["completed", "running"]


# -- metrics() -----------------------------------------------------------------
def test_metrics_is_one_long_frame(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "exman"
    a = make_run(root, {"lr": 0.1})
    b = make_run(root, {"lr": 0.2})
    make_run(root, {"lr": 0.3})  # logged nothing
    write_outcome(b, [{"step": 0, "loss": 3.0}, {"step": 1, "loss": 2.0, "acc": 0.5}])
    write_outcome(a, [{"step": 0, "loss": 1.0}])
    frame = Index(root).metrics()
    assert list(frame.columns) == ["id", "step", "time", "loss", "acc"]
    assert frame.id.tolist() == [1, 2, 2] and frame.id.dtype == "int64"
    assert frame.step.tolist() == [0, 0, 1] and frame.step.dtype == "int64"
    assert frame.loss.tolist() == [1.0, 3.0, 2.0]
    assert cells(frame.acc) == [None, None, 0.5]
    assert str(frame.time.dt.tz) == "UTC"
    now = pd.Timestamp.now(tz="UTC")
    assert ((now - frame.time) < pd.Timedelta(minutes=5)).all()
    wide = frame.pivot(index="step", columns="id", values="loss")
    assert wide.loc[1, 2] == 2.0


def test_metrics_selects_names(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "exman"
    folder = make_run(root, {"lr": 0.1})
    write_outcome(folder, [{"loss": 1.0}, {"acc": 0.5}, {"lr_now": 0.1}])
    frame = Index(root).metrics(["acc", "lr_now"])
    assert list(frame.columns) == ["id", "step", "time", "acc", "lr_now"]
    assert frame.step.tolist() == [1, 2]
    assert Index(root).metrics("loss").loss.tolist() == [1.0]
    with pytest.raises(ExmanError, match=r"'los'.*'loss', 'acc', 'lr_now'"):
        Index(root).metrics("los")


def test_metrics_of_marked_failed_and_tmp_runs(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "exman"
    write_outcome(make_run(root, {"lr": 0.1}, mark="best"), [{"loss": 1.0}])
    write_outcome(make_run(root, {"lr": 0.2}), [{"loss": 2.0}])
    write_outcome(make_run(root, {"lr": 0.3}, status="failed"), [{"loss": 3.0}])
    write_outcome(make_run(root, {"lr": 0.4}, tmp=True), [{"loss": 4.0}])
    index = Index(root)
    assert index.metrics().loss.tolist() == [1.0, 2.0]
    assert index.metrics(source="best").loss.tolist() == [1.0]
    assert index.metrics(failed=True).loss.tolist() == [1.0, 2.0, 3.0]
    assert index.metrics(failed=True, tmp=True).id.tolist() == [1, 2, 3, 4]


def test_metrics_of_runs_that_logged_nothing(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "exman"
    make_run(root, {"lr": 0.1})
    frame = Index(root).metrics()
    assert list(frame.columns) == ["id", "step", "time"] and len(frame) == 0
    with pytest.raises(ExmanError, match=r"no run logged the metric.*'loss'"):
        Index(root).metrics("loss")


# -- aggregate() ---------------------------------------------------------------
def seeded_root(root: pathlib.Path) -> pd.DataFrame:
    """3 seeds of 2 lr x 2 models; the expected table computed by hand."""
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(3):
        for lr in (0.1, 0.01):
            for model in ("mlp", "cnn"):
                params = {"lr": lr, "model": model, "seed": seed, "layers": [2, 3]}
                loss, acc = float(rng.random()), int(rng.integers(0, 100))
                write_outcome(
                    make_run(root, params), [{"train": 1.0}], loss=loss, acc=acc
                )
                rows.append({**params, "loss": loss, "acc": acc})
    by_hand = pd.DataFrame(rows).drop(columns="layers")
    return (
        by_hand.groupby(["lr", "model"], sort=False)
        .agg(
            count=("loss", "size"),
            loss_mean=("loss", "mean"),
            loss_std=("loss", "std"),
            acc_mean=("acc", "mean"),
            acc_std=("acc", "std"),
        )
        .reset_index()
    )


def test_aggregate_over_seeds_matches_pandas(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "exman"
    expected = seeded_root(root)
    table = Index(root).aggregate(over="seed", results=["loss", "acc"])
    assert list(table.columns) == [
        "layers", "lr", "model", "count",
        "loss_mean", "loss_std", "acc_mean", "acc_std",
    ]  # fmt: skip
    assert table.layers.tolist() == [[2, 3]] * 4  # a list groups by its value
    got = table.drop(columns="layers")
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert (table["count"] == 3).all() and table["count"].dtype == "int64"
    # by default every numeric outcome: the results and the last "train"
    default = Index(root).aggregate()
    assert list(default.columns) == [
        "layers", "lr", "model", "count", "train_mean", "train_std",
        "loss_mean", "loss_std", "acc_mean", "acc_std",
    ]  # fmt: skip


def test_aggregate_over_several_and_all_parameters(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "exman"
    seeded_root(root)
    index = Index(root)
    by_model = index.aggregate(over=["seed", "lr"], results="loss")
    assert by_model.model.tolist() == ["mlp", "cnn"]
    assert by_model["count"].tolist() == [6, 6]
    df = index.info()
    assert by_model.loss_mean.tolist() == pytest.approx(
        [df.loss[df.model == m].mean() for m in ("mlp", "cnn")]
    )
    everything = index.aggregate(over=["seed", "lr", "model", "layers"])
    assert everything["count"].tolist() == [12]
    assert everything.loss_std.tolist() == pytest.approx([df.loss.std()])


def test_aggregate_keeps_missing_parameters_as_groups(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "exman"
    for seed in range(2):
        write_outcome(make_run(root, {"seed": seed, "wd": None}), loss=1.0 + seed)
        write_outcome(make_run(root, {"seed": seed, "wd": 0.1}), loss=5.0)
        write_outcome(make_run(root, {"seed": seed}), loss=7.0)  # no wd at all
    table = Index(root).aggregate()
    assert cells(table.wd) == [None, 0.1]
    assert table["count"].tolist() == [4, 2]
    assert table.loss_mean.tolist() == [(1 + 2 + 7 + 7) / 4, 5.0]


def test_aggregate_takes_completed_runs_by_default(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "exman"
    for seed, status in enumerate(["completed", "completed", "running"]):
        folder = make_run(root, {"seed": seed, "lr": 0.1}, status=status)
        write_outcome(folder, loss=float(seed))
    index = Index(root)
    assert index.aggregate()["count"].tolist() == [2]
    assert index.aggregate().loss_mean.tolist() == [0.5]
    assert index.aggregate(status=None)["count"].tolist() == [3]
    assert index.aggregate(status=["running"]).loss_mean.tolist() == [2.0]


def test_aggregate_of_one_run_has_no_deviation(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "exman"
    write_outcome(make_run(root, {"seed": 0, "lr": 0.1}), loss=1.0)
    table = Index(root).aggregate()
    assert table["count"].tolist() == [1] and math.isnan(table.loss_std[0])


def test_aggregate_refuses_what_it_cannot_do(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "exman"
    write_outcome(make_run(root, {"seed": 0, "lr": 0.1}), loss=1.0, note="fine")
    index = Index(root)
    with pytest.raises(ExmanError, match=r"'sed' is no parameter.*'seed'"):
        index.aggregate(over="sed")
    with pytest.raises(ExmanError, match=r"no result 'acc'.*'loss', 'note'"):
        index.aggregate(results="acc")
    with pytest.raises(ExmanError, match="'note' is not a number"):
        index.aggregate(results="note")
    assert "note_mean" not in index.aggregate()  # strings are left out


def test_aggregate_of_no_runs(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "exman"
    write_outcome(make_run(root, {"seed": 0, "lr": 0.1}, status="running"), loss=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = Index(root).aggregate()
    assert len(table) == 0 and "count" in table and "loss_mean" in table


@pytest.mark.parametrize(
    "data",
    [
        b'{"acc": 1}\n',
        b'{"acc": 1}',
        b' \r\n{"acc": 1} \t',
        b'{"acc": 1} x',
        b'{"acc": 1}{"acc": 2}',
        b'{"acc": 1}\x0b',  # not JSON's white space
        b"",
        b"\xef\xbb\xbf" + b'{"acc": 1}',
        '{"acc": 1}'.encode("utf-16"),
        '{"acc": "\u00e9"}'.encode("utf-32"),
        b'{"acc": NaN}',
        b"[1, 2]",
        b'{"acc": 1',
        b"\xff",
    ],
)
def test_a_runs_json_is_read_as_json_loads_reads_it(data: bytes) -> None:
    def read(parse: Any) -> Any:
        try:
            return repr(parse(data))  # repr: NaN is not NaN
        except ValueError as e:
            return type(e), str(e)

    assert read(outcome.parse_json) == read(json.loads)
