#!/usr/bin/env bash
# The dry runs of the shipped configs, the quick preset and two generation plans, one file each:
# run it on two commits and `diff -r` the folders to show a change kept every key (tables, pools,
# stages, searches) and every planned count.
#   benchmarks/dry_runs.sh <tree> <out folder>          e.g. benchmarks/dry_runs.sh . /tmp/dry-after
#   git worktree add ../before <commit> && benchmarks/dry_runs.sh ../before /tmp/dry-before
set -u
tree=$(cd "${1:?a source tree}" && pwd)
out=$(mkdir -p "${2:?an output folder}" && cd "$2" && pwd)
scratch=$(mktemp -d)
python=${PYTHON:-python}
run() {  # name, job, args...
    local name=$1 job=$2; shift 2
    (cd "$tree" && PYTHONPATH="$tree/platform" "$python" "jobs/$job" "$@" --dry-run output_dir="$scratch/out" \
        tracking.uri="sqlite:///$scratch/mlflow.db") > "$out/$name.txt" 2>&1
    echo "exit status $?" >> "$out/$name.txt"
    sed -i "s|$scratch|<scratch>|g" "$out/$name.txt"  # the same text for the same plan, whichever folder
}
for config in "$tree"/configs/shapes.yaml "$tree"/configs/evidence/*.yaml "$tree"/configs/fashion/*.yaml; do
    relative=${config#"$tree"/}
    run "$(echo "$relative" | tr / _)" sweep.py --config "$relative"
done
run quick sweep.py --preset quick
run generate-default generate.py
run generate-fashion generate.py --config configs/fashion/r0.99.yaml
rm -rf "$scratch"
echo "dry runs in $out"
