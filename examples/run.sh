#!/usr/bin/env bash
# Run a small sweep of the example script (examples/sweep.yaml: 2 learning
# rates x 2 models x 2 seeds, 2 runs at a time), then list the runs.
# Run it again: the sweep finds every task done and runs nothing.
set -euo pipefail
cd "$(dirname "$0")"

exman sweep sweep.yaml -j 2
exman --root exman ls
