"""bfloat16 exciters after pooling layers on Keras' JAX backend (CPU): finite, near float32's, no float32 fallback.

Keras fixes its backend per process, so the renders run in a subprocess with ``KERAS_BACKEND=jax``; skipped where
JAX is not installed (CI runs TensorFlow only).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tiny import REPO

pytest.importorskip("jax")

SCRIPT = """
import dataclasses, json, logging
import keras
from generator.analysis.exciters import render_exciters
from generator.config import ExciterParams
from tiny import exciter_model, geometry_model

warnings = []
logging.getLogger("generator").addHandler(type("H", (logging.Handler,), {"emit": lambda s, r: warnings.append(r.getMessage())})())
tiny = exciter_model()  # c3 follows a max pool; geometry_model's c2 an average pool
cases = [("max", tiny, "c3", "gradient_ascent", [1, 2]), ("max", tiny, "c3", "lucid", [1, 2]),
         ("average", geometry_model(ones=False), "c2", "gradient_ascent", [0, 1])]
out = {"backend": keras.backend.backend(), "runs": []}
for pool, model, layer, method, units in cases:
    base = ExciterParams(method=method, steps=5 if method == "gradient_ascent" else 12, size=32, batch_size=2, seed=3)
    run = {"case": f"{pool} pool, {layer}, {method}"}
    for precision in ("float32", "bfloat16"):
        r = render_exciters(model, layer, units, dataclasses.replace(base, precision=precision), lambda x: (x - 128.0) / 10.0)
        run[precision] = [r.activation.tolist(), r.start_activation.tolist()]
    out["runs"].append(run)
out["warnings"] = warnings
print("RESULT " + json.dumps(out))
"""


def test_bfloat16_exciters_after_pooling_on_jax():
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "tests")]))
    run = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(next(line for line in run.stdout.splitlines() if line.startswith("RESULT "))[7:])
    assert out["backend"] == "jax" and out["warnings"] == []  # bfloat16 itself gave these, no float32 fallback
    assert len(out["runs"]) == 3
    for run in out["runs"]:
        fp32, bf16 = np.array(run["float32"]), np.array(run["bfloat16"])
        assert np.isfinite(bf16).all(), run
        np.testing.assert_allclose(bf16, fp32, rtol=0.1, atol=0.03, err_msg=run["case"])
        assert np.all(bf16[0] > bf16[1]), run  # each unit rose
