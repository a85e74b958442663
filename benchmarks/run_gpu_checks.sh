#!/usr/bin/env bash
# Every GPU check of the package in one prepared run (about 5 minutes on one H100), for a lent CUDA machine:
#   OUT=/some/folder bash benchmarks/run_gpu_checks.sh
# 1. K-CROSS throughput at 240x240 and 3-D SSIM / MS-SSIM against MONAI (benchmarks/bench_gpu.py),
# 2. the CUDA tests (GPU values equal to CPU values for every registered metric and for K-CROSS),
# 3. every 2-D and 3-D peer cell on the GPU (benchmarks/bench_peers.py --device cuda),
# 4. profiler tables of the small 2-D cells and of K-CROSS (OUT/a/profile_*.txt),
# 5. the `score` panel on 20 simulated volumes with --device cuda, and host-device synchronisations per call.
# Each step has its own time limit, so that one failure leaves the others' results. SECTIONS_B=sync skips the
# score panel (about 90 s of simulation and scoring).
set -u
OUT=${OUT:?set OUT to a folder for the results}
mkdir -p "$OUT/a" "$OUT/b"
export PYTHONUNBUFFERED=1 PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  python3 -c "import torch, monai, ignite, nibabel; print('torch', torch.__version__, 'monai', monai.__version__)"
  nproc; } >"$OUT/env.txt" 2>&1
timeout 160 python3 benchmarks/bench_gpu.py --out "$OUT/a" --sections kcross,monai,profile >"$OUT/a.log" 2>&1
echo "bench_gpu a: rc $?" >>"$OUT/env.txt"
timeout 110 python3 -m pytest -q -p no:cacheprovider -k cuda \
  tests/metrics/test_properties.py tests/functional/test_no_reference.py tests/metrics/test_kcross.py \
  tests/functional/test_filtering.py >"$OUT/pytest.log" 2>&1
echo "pytest: rc $?" >>"$OUT/env.txt"
timeout 90 python3 benchmarks/bench_peers.py --device cuda --repeats 5 >"$OUT/peers.log" 2>&1
echo "bench_peers: rc $?" >>"$OUT/env.txt"
timeout 170 python3 benchmarks/bench_gpu.py --out "$OUT/b" --sections "${SECTIONS_B:-score,sync}" >"$OUT/b.log" 2>&1
echo "bench_gpu b: rc $?" >>"$OUT/env.txt"
cat "$OUT/env.txt"
