#!/usr/bin/env bash
# The first GPU numbers in one table (see benchmarks/gpu_check.py): VGGT-1B extraction frames/s
# and peak memory at 32 frames; Qwen3-VL-2B student step (ZeRO-2, bf16, one GPU), cached vs online
# teachers, against the FLOP-ideal ratio. Target: under 8 minutes on one 80 GB GPU.
#
# usage: benchmarks/gpu_check.sh [--wheels DIR] [--frames 32] [--steps 3] [--dry-run]
#
# GPU machines may be offline with only torch and transformers installed: any missing package is
# installed from DIR (no index). Prepare DIR on a networked machine of the same Python/platform:
#   pip download -d wheels zarr numcodecs webdataset            # with their dependencies
#   pip download -d wheels --no-binary deepspeed deepspeed      # sdist; built with the local torch
#   pip wheel --no-deps -w wheels .                              # geovr itself, from this checkout
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
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
if [[ -n $WHEELS && ! -d $WHEELS ]]; then echo "error: --wheels $WHEELS is not a folder" >&2; exit 2; fi

need() {  # need <import name> <package name>
  "$PY" -c "import $1" 2>/dev/null && return 0
  if [[ -z $WHEELS ]]; then
    echo "error: python package '$2' is missing; give --wheels DIR holding it (see --help)" >&2; exit 2
  fi
  echo "installing $2 from $WHEELS (offline)" >&2
  "$PY" -m pip install --no-index --find-links "$WHEELS" --no-build-isolation "$2" >&2
}
need torch torch
need transformers transformers
need numcodecs numcodecs
need zarr zarr
need webdataset webdataset
need deepspeed deepspeed
need geovr geovr
exec "$PY" "$HERE/gpu_check.py" ${ARGS[@]+"${ARGS[@]}"}
