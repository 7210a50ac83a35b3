import threading
from pathlib import Path

import pytest

from generator.write_behind import WriteBehind


def test_writes_run_in_order_on_one_other_thread():
    writes, done = WriteBehind(), []
    for name in "abc":
        writes.submit(Path(name), lambda name=name: done.append((name, threading.current_thread())))
    assert writes.settle() == set()
    assert [name for name, _ in done] == ["a", "b", "c"]
    assert len({thread for _, thread in done}) == 1 and done[0][1] is not threading.current_thread()
    writes.close()


def test_a_failed_write_stops_the_ones_after_it_and_is_raised_at_the_next_wait_submit_and_settle():
    writes, done = WriteBehind(), []
    writes.submit(Path("a"), lambda: done.append("a"))
    writes.submit(Path("b"), lambda: 1 / 0)
    writes.submit(Path("c"), lambda: done.append("c"))
    writes.wait(Path("a"))
    with pytest.raises(ZeroDivisionError):
        writes.wait(Path("c"))  # skipped: its wait raises the failure before it
    with pytest.raises(ZeroDivisionError):
        writes.submit(Path("d"), lambda: done.append("d"))
    assert writes.settle() == {Path("b"), Path("c")} and done == ["a"]
    with pytest.raises(ZeroDivisionError):
        writes.raise_failed()
    writes.close()


def test_settle_with_cancel_drops_the_writes_not_started_and_waits_for_the_running_one():
    writes, started, release, done = WriteBehind(), threading.Event(), threading.Event(), []
    writes.submit(Path("a"), lambda: (started.set(), release.wait(10), done.append("a")))
    writes.submit(Path("b"), lambda: done.append("b"))
    assert started.wait(10)
    threading.Timer(1.0, release.set).start()  # "b" cannot start before: "a" holds the one thread
    assert writes.settle(cancel=True) == {Path("b")} and done == ["a"]
    writes.close()
