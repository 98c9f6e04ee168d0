#!/usr/bin/env bash
# What a GPU session should run first, in one batch (about 5 minutes on an H100): the CUDA kernels against their
# reference, under compute-sanitizer, their bandwidth against a device copy, and the torch CUDA backend's latency.
# Writes logs and result files into ${OUT:-gpu_out}; the device machine returns those.
# usage: scripts/gpu_checks.sh   (repository root; needs torch with CUDA, nvcc, scikit-build-core, cmake, pytest)
set -u
out=${OUT:-gpu_out}
mkdir -p "$out"
# (the device returns at most 8 files: keep to the ones below)
pip install -q --no-deps --no-build-isolation -e . > /tmp/install.log 2>&1 || { tail -20 /tmp/install.log; exit 1; }
{ python -c "from stylecam import ops; print(ops.backend())"; python -m pytest -q -p no:cacheprovider tests/test_ops.py; } \
  > "$out/test_ops.log" 2>&1; head -1 "$out/test_ops.log"; tail -3 "$out/test_ops.log"
compute-sanitizer --tool memcheck --print-limit 20 python -m pytest -q -p no:cacheprovider tests/test_ops.py -k gpu \
  > "$out/memcheck.log" 2>&1; grep -E "ERROR SUMMARY|passed|failed" "$out/memcheck.log"
stylecam bench kernels --sizes 1080x1920,720x1280 --save | tee "$out/bench_kernels.txt"
stylecam bench --backends torch --models candy --sizes 480x640,720x1280,1080x1920 --iters 100 --save \
  | tee "$out/bench_torch.txt"
cp -r benchmarks/results/"$(python -c 'from stylecam.benchmarks import results as r; print(r.device_slug(r.device_block()))')" \
  "$out/results" 2>/dev/null
ls -R "$out" | head -30
