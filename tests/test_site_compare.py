"""The comparison of two builds' files."""

from __future__ import annotations

import json

from site_compare import same_file


def test_float_files_compare_to_float32_rounding_and_everything_else_to_the_byte():
    record = {"mean": 0.0008800208572210977, "label": "raises class 3", "top": [1, 2]}
    near = {**record, "mean": 0.0008800208543107146}  # one image's float32 mean a bit apart, over 40 images
    assert same_file("u.json", json.dumps(record).encode(), json.dumps(near).encode())
    assert not same_file("u.json", json.dumps(record).encode(), json.dumps({**record, "mean": 0.00088003}).encode())
    assert not same_file("u.json", json.dumps(record).encode(), json.dumps({**record, "top": [2, 1]}).encode())
    assert same_file("u.csv", b"c,mean\n1,0.0008800208572210977\n", b"c,mean\n1,0.0008800208543107146\n")
    assert not same_file("u.csv", b"c,mean\n1,0.00088\n", b"c,mean\n2,0.00088\n")
    assert not same_file("u.md", b"0.0008800208572210977", b"0.0008800208543107146")
