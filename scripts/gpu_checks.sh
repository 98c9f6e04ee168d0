#!/usr/bin/env bash
# The one batch a borrowed GPU machine runs (a few minutes on an H200): cpp_ext built or loaded, its GPU tests and
# compute-sanitizer memcheck, kernel GB/s against a device copy (buffers rotated past the L2), and the fused
# end-to-end trip on torch tensors (BGR8 up, fused pre, FP16 network, fused post with the strength blend, BGR8 down)
# at 720p and 1080p, into one JSON under benchmarks/results/<device>/gpu_check/. At most 8 files come back: the
# logs and that JSON are copied into ${OUT:-gpu_out}.
# usage: scripts/gpu_checks.sh   (repository root; torch with CUDA, nvcc, cmake, pytest; no network needed)
set -u
out=${OUT:-gpu_out}
mkdir -p "$out"
python3 -m pip install -q --no-deps --no-build-isolation -e . > "$out/install.log" 2>&1 || { tail -20 "$out/install.log"; exit 1; }
{ python3 -c "from stylecam import ops; print(ops.backend())"
  python3 -m pytest -q -p no:cacheprovider tests/test_ops.py tests/test_trt_backend.py; } > "$out/tests.log" 2>&1
head -1 "$out/tests.log"; tail -3 "$out/tests.log"
compute-sanitizer --tool memcheck --print-limit 20 python3 -m pytest -q -p no:cacheprovider tests/test_ops.py -k gpu \
  > "$out/memcheck.log" 2>&1; grep -E "ERROR SUMMARY|passed|failed" "$out/memcheck.log"
python3 -m stylecam.benchmarks.gpu_check --sizes 720x1280,1080x1920 | tee "$out/gpu_check.txt"
cp "$(ls -t benchmarks/results/*/gpu_check/*.json | head -1)" "$out/" 2>/dev/null
ls "$out"
