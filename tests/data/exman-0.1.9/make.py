"""Write the fixture of this folder with the real exman 0.1.9.

``root/`` is a root that exman 0.1.9's own ExParser and ``exman mark``
wrote; ``info.json`` is what 0.1.9's own ``Index(root).info()`` returned
for it, column by column (dtype and values), for each source in
:data:`SOURCES`. The tests load ``root/`` with this exman and compare with
``info.json``: what "0.1.9 gives" is what 0.1.9 gave.

Run ``python tests/data/exman-0.1.9/make.py`` to make both again (it needs
PyPI: it installs ``exman==0.1.9`` into a throwaway virtual environment),
or pass ``--python`` an interpreter that already has exman 0.1.9. The runs'
times change; the tests do not depend on them.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence

HERE = pathlib.Path(__file__).resolve().parent
VERSION = "0.1.9"
#: the sources given to ``Index(root).info()``
SOURCES = [None, "model", "model/cnn", "best"]

#: the experiment: the arguments of the original's README, and a few awkward
#: ones (a string that looks like a number, an optional float, a flag)
SCRIPT = """\
import sys

import exman

parser = exman.ExParser(root=sys.argv.pop(1), automark=["model"])
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--model", default="resnet")
parser.add_argument("--layers", type=int, nargs="+", default=[1, 2])
parser.add_argument("--wd", type=exman.optional(float), default=None)
parser.add_argument("--flag", action="store_true")
parser.add_argument("--code", default="007")
parser.add_argument("--tag", default="")
if "--warmup" in sys.argv:  # an argument the script gained later
    parser.add_argument("--warmup", type=int, default=5)
parser.add_argument("--fail", action="store_true")
args = parser.parse_args()
with args.safe_experiment:
    print("training with lr", args.lr)
    if args.fail:
        raise ValueError("asked to fail")
"""

#: the runs, in order (ids 1, 2, ...)
RUNS: list[list[str]] = [
    [],
    ["--lr", "0.5", "--flag"],
    ["--model", "cnn", "--wd", "0.1", "--code", "1e3", "--tag", "b c"],
    ["--layers", "3", "--tag", "yes"],
    ["--model", "cnn", "--lr", "0.01", "--name", "named"],
    ["--tmp", "--lr", "9"],
    ["--model", "cnn", "--fail"],
    ["--model", "vit", "--warmup", "10", "--epochs", "20"],
]
#: ``exman mark best ...``
BEST = ["1", "3", "8"]

#: prints 0.1.9's ``Index(root).info(source)`` of each source as JSON
DUMP = """\
import json, math, pathlib, sys, warnings
warnings.simplefilter("ignore")
import pandas as pd
import exman

root = pathlib.Path(sys.argv[1])


def plain(value):
    if isinstance(value, pathlib.PurePath):
        return {"path": str(pathlib.Path(value).relative_to(root))}
    if isinstance(value, pd.Timestamp):
        return {"timestamp": value.isoformat()}
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


out = {}
for source in json.loads(sys.argv[2]):
    df = exman.Index(root).info(source)
    out[json.dumps(source)] = {
        column: {"dtype": str(df[column].dtype),
                 "values": [plain(v) for v in df[column].tolist()]}
        for column in df.columns
    }
print(json.dumps(out, indent=1, sort_keys=False))
"""


def throwaway_python(folder: pathlib.Path) -> str:
    """A virtual environment in ``folder`` with exman 0.1.9 from PyPI."""
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run(
        [python, "-m", "pip", "install", "-q", f"exman=={VERSION}"], check=True
    )
    return python


def make(python: str, work: pathlib.Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "EXMAN_ROOT")}
    version = subprocess.run(
        [python, "-c", "import exman; print(exman.__version__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if version != VERSION:
        raise SystemExit(f"{python} has exman {version}, not {VERSION}")
    root = work / "root"
    for argv in RUNS:
        # the script from stdin: the failed run's traceback.txt names
        # "<stdin>", not a folder of this machine
        done = subprocess.run(
            [python, "-", str(root), *argv],
            input=SCRIPT,
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0 and "--fail" not in argv:
            raise SystemExit(f"the script {' '.join(argv)} failed:\n{done.stderr}")
    exman_script = pathlib.Path(python).parent / "exman"
    subprocess.run(
        [python, str(exman_script), "mark", "best", *BEST],
        cwd=root,
        env=env,
        check=True,
        capture_output=True,
    )
    dump = subprocess.run(
        [python, "-c", DUMP, str(root), json.dumps(SOURCES)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    target = HERE / "root"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(root, target, symlinks=True)
    (HERE / "info.json").write_text(dump.stdout)
    print(f"wrote {target} and {HERE / 'info.json'}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--python", help=f"an interpreter with exman {VERSION} (default: install one)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="exman-0.1.9-") as tmp:
        work = pathlib.Path(tmp)
        make(args.python or throwaway_python(work), work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
