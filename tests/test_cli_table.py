"""``exman table`` and ``exman ls -o`` through the real console script,
against roots made by a real ExParser script."""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from _run_helpers import exman_command
from _views_runs import SEED_STEP, grid, loss, make_root


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """mlp/cnn x x/yy x seeds 0-2: 12 runs."""
    return make_root(tmp_path_factory.mktemp("table"), grid())


#: names that mean something to LaTeX, Markdown, HTML comments or a shell
AWKWARD = [
    "a_b & c",
    "50% off",
    "{x}",
    "ünï code",
    "back\\slash",
    "p|pe",
    "#1 ~^$",
    "--> <",
]


@pytest.fixture(scope="module")
def awkward_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_root(
        tmp_path_factory.mktemp("awkward"),
        grid(models=AWKWARD, datasets=["x_1"], seeds=range(2)),
    )


def table(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return exman_command("table", *args, cwd=root.parent)


# -- LaTeX, checked without and with a TeX installation ------------------------------
def latex_body(text: str) -> list[str]:
    """The lines of the LaTeX text without comments (an unescaped %)."""
    lines = []
    for line in text.splitlines():
        lines.append(re.sub(r"(?<!\\)%.*", "", line))
    return [line for line in lines if line.strip()]


def check_latex(text: str, columns: int) -> None:
    """Braces balance, environments nest, math closes, rows have every column."""
    body = "\n".join(latex_body(text))
    depth = 0
    plain = body.replace("\\\\", "  ").replace("\\{", "  ").replace("\\}", "  ")
    for ch in plain:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0, body
    assert depth == 0, body
    stack = []
    for kind, name in re.findall(r"\\(begin|end)\{(\w+)\}", body):
        if kind == "begin":
            stack.append(name)
        else:
            assert stack.pop() == name
    assert stack == []
    spec = re.search(r"\\begin\{tabular\}\{([lrc]+)\}", body)
    assert spec is not None and len(spec.group(1)) == columns
    for line in latex_body(text):
        if not line.endswith("\\\\"):
            continue
        row = plain_row(line)
        assert row.count("$") % 2 == 0, line
        spans = sum(int(n) - 1 for n in re.findall(r"\\multicolumn\{(\d+)\}", line))
        assert row.count("&") + 1 + spans == columns, line


def plain_row(line: str) -> str:
    """A row without escaped characters (\\&, \\$, \\%...)."""
    return re.sub(r"\\[&$%#_{}]", "", line)


def compile_latex(text: str, folder: Path) -> str:
    """pdflatex the table in a document; returns the log."""
    document = (
        "\\documentclass{article}\n\\usepackage[T1]{fontenc}\n"
        f"\\begin{{document}}\n{text}\\end{{document}}\n"
    )
    (folder / "t.tex").write_text(document)
    proc = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (folder / "t.pdf").stat().st_size > 0
    return proc.stdout


def test_latex_table(root: Path) -> None:
    proc = table(root, "--rows", "model", "--cols", "dataset", "--value", "loss")
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    check_latex(text, columns=3)
    rows = [line for line in latex_body(text) if line.startswith(("mlp", "cnn"))]
    mlp_x = sum(loss("mlp", "x", 0.1, s) for s in range(3)) / 3
    # mean to the second digit of the spread (0.25): two decimals, mlp best
    assert rows[0] == (
        f"mlp & $\\mathbf{{{mlp_x:.2f} \\pm {SEED_STEP:.2f}}}$ & "
        f"$\\mathbf{{{mlp_x + 0.5:.2f} \\pm {SEED_STEP:.2f}}}$ \\\\"
    )
    assert "\\mathbf" not in rows[1]
    assert "\\multicolumn{2}{c}{dataset}" in text
    comments = [line for line in text.splitlines() if line.startswith("%")]
    assert comments[0] == (
        "% exman table --rows model --cols dataset --value loss --over seed --stat std"
    )
    assert "3 runs per cell" in comments[1] and "lowest" in comments[1]
    ids = exman_command("ls", "-f", "csv", "-c", "id,model,dataset", cwd=root.parent)
    runs = pd.read_csv(io.StringIO(ids.stdout))
    for model in ("mlp", "cnn"):
        for dataset in ("x", "yy"):
            mine = runs[(runs.model == model) & (runs.dataset == dataset)].id
            want = f"% model={model}, dataset={dataset}: runs " + ", ".join(
                map(str, sorted(mine))
            )
            assert want in comments


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no pdflatex")
def test_latex_compiles(root: Path, awkward_root: Path, tmp_path: Path) -> None:
    for where, columns, args in (
        (root, 3, ["--rows", "model", "--cols", "dataset", "--stat", "ci"]),
        (awkward_root, 2, ["--rows", "model", "--cols", "dataset"]),
        (awkward_root, 1 + len(AWKWARD), ["--rows", "dataset", "--cols", "model"]),
    ):
        proc = table(where, *args, "--value", "loss")
        assert proc.returncode == 0, proc.stderr
        check_latex(proc.stdout, columns=columns)
        compile_latex(proc.stdout, tmp_path)


def test_latex_escapes_names(awkward_root: Path) -> None:
    proc = table(
        awkward_root, "--rows", "model", "--cols", "dataset", "--value", "loss"
    )
    assert proc.returncode == 0, proc.stderr
    check_latex(proc.stdout, columns=2)
    body = latex_body(proc.stdout)
    labels = [line.split(" & ")[0] for line in body if "\\pm" in line]
    assert sorted(labels) == sorted(
        [
            "a\\_b \\& c",
            "50\\% off",
            "\\{x\\}",
            "ünï code",
            "back\\textbackslash{}slash",
            "p$|$pe",
            "\\#1 \\textasciitilde{}\\textasciicircum{}\\$",
            "--$>$ $<$",
        ]
    )
    assert "x\\_1 \\\\" in "\n".join(body)
    comments = [line for line in proc.stdout.splitlines() if line.startswith("%")]
    assert any(
        line.startswith("% model=50% off, dataset=x_1: runs ") for line in comments
    )
    assert not any("\n" in line or "\r" in line for line in comments)


# -- Markdown and CSV ------------------------------------------------------------
def cells(line: str) -> list[str]:
    """The cells of a Markdown table row (``\\|`` is no separator)."""
    parts = re.split(r"(?<!\\)\|", line.strip())
    return [p.strip() for p in parts[1:-1]]


def test_markdown_table(root: Path, awkward_root: Path) -> None:
    proc = table(root, "--rows", "model", "--cols", "dataset", "--value", "loss",
                 "-f", "markdown", "--maximize", "--stat", "ci")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert cells(lines[0]) == ["model", "dataset=x", "dataset=yy"]
    assert cells(lines[1]) == [":--", "--:", "--:"]
    assert cells(lines[2])[0] == "mlp" and "**" not in lines[2]
    assert cells(lines[3])[0] == "cnn" and cells(lines[3])[1].startswith("**")
    assert "mean ± 95% CI over seed, 3 runs per cell" in proc.stdout
    assert "highest" in proc.stdout
    assert sum(line.startswith("<!-- model=") for line in lines) == 4

    proc = table(awkward_root, "--rows", "model", "--value", "loss", "-f", "markdown")
    assert proc.returncode == 0, proc.stderr
    rows = [
        cells(line) for line in proc.stdout.splitlines()[2:] if line.startswith("|")
    ]
    assert all(len(row) == 2 for row in rows)
    assert sorted(row[0] for row in rows) == sorted([
        "a\\_b & c", "50% off", "{x}", "ünï code", "back\\\\slash", "p\\|pe",
        "\\#1 \\~^$", "--\\> \\<",
    ])  # fmt: skip
    comments = [line for line in proc.stdout.splitlines() if line.startswith("<!--")]
    # a name cannot close the comment early
    assert all(line.count("-->") == 1 and line.endswith("-->") for line in comments)


def test_csv_table_reads_back(root: Path) -> None:
    proc = table(root, "--rows", "model", "--cols", "dataset", "--value", "loss",
                 "-f", "csv")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    got = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert list(got[0]) == ["model", "dataset", "mean", "std", "count", "best", "ids"]
    assert [(r["model"], r["dataset"]) for r in got] == [
        ("mlp", "x"), ("mlp", "yy"), ("cnn", "x"), ("cnn", "yy")
    ]  # fmt: skip
    for r in got:
        want = sum(loss(r["model"], r["dataset"], 0.1, s) for s in range(3)) / 3
        assert float(r["mean"]) == pytest.approx(want)
        assert float(r["std"]) == pytest.approx(SEED_STEP)
        assert r["count"] == "3" and len(r["ids"].split()) == 3
        assert r["best"] == ("true" if r["model"] == "mlp" else "false")


def test_table_to_a_file_with_a_query(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "table.tex"
    proc = table(root, "--rows", "model", "--value", "loss",
                 "--query", "dataset == 'yy'", "-o", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"wrote a table of 2 row(s) to {out}\n"
    text = out.read_text()
    check_latex(text, columns=2)
    assert "--query 'dataset == '\"'\"'yy'\"'\"''" in text.splitlines()[0]


def test_table_errors_name_what_is_wrong(root: Path) -> None:
    proc = table(root, "--rows", "model", "--value", "loss")
    assert proc.returncode == 2
    assert "differ in dataset='x' or 'yy'" in proc.stderr
    assert "add 'dataset' to the rows or cols, or to over" in proc.stderr
    proc = table(root, "--rows", "model", "--cols", "dataset", "--value", "acc")
    assert proc.returncode == 2 and "value: no column 'acc'" in proc.stderr
    proc = table(root, "--rows", "model", "--cols", "dataset", "--value", "loss",
                 "--marked", "best")  # fmt: skip
    assert proc.returncode == 2 and "best" in proc.stderr
    proc = table(root, "--rows", "model", "--value", "loss", "--over", "seed,dataset")
    assert proc.returncode == 0 and "6 runs per cell" in proc.stdout


def test_a_cell_without_runs(root: Path, tmp_path: Path) -> None:
    args = ["--rows", "model", "--cols", "dataset", "--value", "loss",
            "--query", "not (model == 'cnn' and dataset == 'yy')"]  # fmt: skip
    proc = table(root, *args)
    assert proc.returncode == 0, proc.stderr
    check_latex(proc.stdout, columns=3)
    assert "\ncnn & $" in proc.stdout and "$ & -- \\\\\n" in proc.stdout
    assert "% model=cnn, dataset=yy: runs none" in proc.stdout
    if shutil.which("pdflatex"):
        compile_latex(proc.stdout, tmp_path)
    proc = table(root, *args, "-f", "markdown")
    assert "| cnn | " in proc.stdout and " | – |" in proc.stdout
    proc = table(root, *args, "-f", "csv")
    assert proc.stdout.splitlines()[-1].startswith("cnn,yy,,,0,false,")


def test_a_table_of_no_runs_writes_nothing(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "t.tex"
    proc = table(root, "--rows", "model", "--value", "loss",
                 "--query", "lr > 5", "-o", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "no completed run with a value of 'loss'" in proc.stderr
    assert proc.stdout == "" and not out.exists()


# -- exman ls -o -----------------------------------------------------------------
def test_ls_to_parquet_keeps_the_types(root: Path, tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    out = tmp_path / "runs.parquet"
    proc = exman_command("ls", "-f", "parquet", "-o", str(out), cwd=root.parent)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"wrote 12 run(s) to {out}\n"
    df = pd.read_parquet(out)
    assert len(df) == 12 and df.id.tolist() == list(range(1, 13))
    assert {"model", "dataset", "lr", "seed", "layers", "loss", "status"} <= set(df)
    assert df.id.dtype == "int64" and df.seed.dtype == "int64"
    assert df.lr.dtype == "float64" and df.loss.dtype == "float64"
    assert str(df.started.dtype).startswith("datetime64") and df.started.dt.tz
    assert [list(v) for v in df.layers] == [[1, 2]] * 12  # lists stay lists
    assert df.root.str.startswith("runs/").all()  # relative to the root
    assert (df.status == "completed").all()


def test_ls_to_csv_has_every_column(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs.csv"
    proc = exman_command("ls", "-o", str(out), cwd=root.parent)  # from the suffix
    assert proc.returncode == 0, proc.stderr
    df = pd.read_csv(out)
    assert len(df) == 12 and {"seed", "lr", "root", "host", "loss"} <= set(df)
    only = tmp_path / "some.csv"
    proc = exman_command("ls", "-c", "id,loss", "-o", str(only), cwd=root.parent)
    assert list(pd.read_csv(only).columns) == ["id", "loss"]


def test_ls_export_errors(root: Path, tmp_path: Path) -> None:
    proc = exman_command("ls", "-f", "parquet", cwd=root.parent)
    assert proc.returncode == 2 and "give -o FILE" in proc.stderr
    proc = exman_command("ls", "-o", str(tmp_path / "runs.txt"), cwd=root.parent)
    assert proc.returncode == 2 and "give --format csv|json|parquet" in proc.stderr
    code = (
        "import sys; sys.modules['pyarrow'] = None\n"
        "from exman.cli import main\n"
        f"sys.exit(main(['ls', '-f', 'parquet', '-o', {str(tmp_path / 'r.pq')!r}]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=root.parent
    )
    assert proc.returncode == 2
    assert "needs pyarrow" in proc.stderr
    assert "pip install 'exman[parquet]'" in proc.stderr
    assert not (tmp_path / "r.pq").exists()
