"""Expanded weights for every target channel of a VGG16 layer, batched, on this machine.

    python benchmarks/bench_circuits.py [--quick]

Prints seconds for all 512 channels of block4_conv2 against block3_conv3 (across
block3_pool and block4_conv1) and for all 512 of block5_conv1 against block4_conv3, on the
bundled vgg16-hed weights, and compares with one channel at a time (a sample, scaled up).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from generator.analysis.circuits import expanded_weights
from generator.config import ModelSection
from generator.models import load_model

PAIRS = [("block3_conv3", "block4_conv2"), ("block4_conv3", "block5_conv1"), ("block2_conv2", "block3_conv2")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a sample of 64 target channels")
    args = parser.parse_args()
    model = load_model(ModelSection(name="vgg16-hed", weights="bundled"), Path(".")).features
    for source, target in PAIRS:
        n = 64 if args.quick else model.get_layer(target).filters
        channels = list(range(n))
        expanded_weights(model, source, target, channels[:1])  # warm up
        start = time.perf_counter()
        weights = expanded_weights(model, source, target, channels)
        batched = time.perf_counter() - start
        sample = channels[:8]
        start = time.perf_counter()
        for c in sample:
            expanded_weights(model, source, target, [c])
        one_at_a_time = (time.perf_counter() - start) / len(sample) * n
        print(f"{source}->{target}: channels={n} shape={weights.shape} batched_seconds={batched:.2f} "
              f"one_at_a_time_seconds={one_at_a_time:.2f} speedup={one_at_a_time / batched:.1f}")


if __name__ == "__main__":
    main()
