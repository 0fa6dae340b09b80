#!/usr/bin/env bash
# Run the example script three times, then show what exman recorded.
set -euo pipefail
cd "$(dirname "$0")"

python main.py --lr 0.1
python main.py --lr 0.01 --model vit
python main.py --lr 0.5 --epochs 5 --seed 1

ls exman/index
for f in exman/index/*.yaml; do
    echo "== $f"
    cat "$f"
done
