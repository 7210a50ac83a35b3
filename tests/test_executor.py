"""The Ray executor on a real local cluster (two CPUs, no mocks): the same files as an in-process
build, a killed worker's job retried, one progress count per job, clear lines for bad arguments."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from generator import cli
from generator.analyses.exciters import _exciters_job
from generator.analyses.parts import batch_parts
from generator.analysis.examples import example_shard, merge_tables
from generator.build import build_site
from generator.config import ExciterParams, load_config
from generator.executor import InProcess, Job, RayExecutor
from generator.models import load_model

from site_compare import same_file
from tiny import edit_config, make_project, write_images

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def tree(folder: Path) -> dict[str, bytes]:
    folder = folder.resolve()
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_command_line_builds_on_ray(tiny_project):
    """A real process: one Ray cluster started and stopped by the build, the site written, no worker output."""
    edit_config(tiny_project, browse={"layers": ["c3"]})
    run = subprocess.run([sys.executable, "-m", "generator", "build", "--executor", "ray", "--workers", "1"],
                         cwd=tiny_project, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
    assert run.returncode == 0, run.stderr
    assert f"ray: 1 worker ({os.cpu_count()} CPU each)" in run.stderr
    assert (tiny_project / "docs" / "generated" / "index.md").exists()


def test_a_ray_build_writes_the_same_files_as_an_in_process_build(cluster, tiny_model_file, tmp_path, caplog):
    """Several jobs of every kind: exciter parts of each layer, example shards and map parts (40 images)."""
    summaries, sites = {}, {}
    caplog.set_level("INFO", logger="generator")
    for executor in ("local", "ray"):
        project = make_project(tmp_path / executor, tiny_model_file)
        write_images(project / "examples", n=40, size=36, seed=3)
        edit_config(project, browse={"examples_dir": "examples"})
        summaries[executor] = build_site(load_config(project / "site_config.yaml"), project, executor=executor)
        sites[executor] = tree(project / "docs" / "generated")
    assert "ray: 2 workers (1 CPU each)" in caplog.text
    assert summaries["ray"]["cache_misses"] == summaries["local"]["cache_misses"] > 100
    local, remote = sites["local"], sites["ray"]
    assert len(local) > 50
    assert local.keys() == remote.keys()
    assert [name for name in local if not same_file(name, local[name], remote[name])] == []


def test_example_shards_merge_into_the_whole_pass_to_the_bit(tiny_model_file, tmp_path):
    loaded = load_model(load_config_for(tiny_model_file, tmp_path).model, tmp_path)
    files = [tmp_path / "examples" / n for n in write_images(tmp_path / "examples", n=37, size=24, seed=5)]
    layers = ["c1", "c3"]
    whole = example_shard(loaded, layers, files, 0, 24, 3, seed=3)
    parts = batch_parts(len(files), 16, 4)
    assert [(p.start, p.stop) for p in parts] == [(0, 16), (16, 32), (32, 37)]
    found = [example_shard(loaded, layers, files[p.start:p.stop], p.start, 24, 3, seed=3) for p in parts]
    for layer in layers:
        merged = merge_tables([f[layer] for f in found], 3)
        assert merged.image.max() >= 16  # later shards won some places
        for field in ("image", "score", "position", "maps"):  # the maps of the entries won in later shards too
            np.testing.assert_array_equal(getattr(merged, field), getattr(whole[layer], field), err_msg=field)
        assert merged.maps.shape[:2] == merged.image.shape and merged.maps.any()
        # The statistics too: histograms, sums and the seeded samples of every bin (the same, in any slot order).
        assert merged.tally.count == whole[layer].tally.count == 37
        order = {id(t): np.argsort(t.key, axis=2, kind="stable") for t in (merged.tally, whole[layer].tally)}
        for name, value in vars(whole[layer].tally).items():
            mine = getattr(merged.tally, name)
            if name in ("key", "image", "value", "position"):
                mine = np.take_along_axis(mine, order[id(merged.tally)], axis=2)
                value = np.take_along_axis(value, order[id(whole[layer].tally)], axis=2)
            np.testing.assert_array_equal(mine, value, err_msg=name)


def load_config_for(model_file: Path, folder: Path):
    return load_config(make_project(folder, model_file) / "site_config.yaml")


def worker_pids() -> list[int]:
    """The processes of the executor's actors (Ray titles them ray::ModelWorker...)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"ray::ModelWorker" in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            pass
    return pids


def test_a_killed_worker_is_retried_and_every_job_counted_once(cluster, tiny_model_file, tmp_path):
    config = load_config_for(tiny_model_file, tmp_path)
    params = ExciterParams(method="gradient_ascent", steps=1500, size=32, batch_size=2, precision="float32")
    jobs = [Job(_exciters_job, ("c3", [c, c + 1], params, 2), 2) for c in range(0, 8, 2)]
    executor = RayExecutor(config.model, config.root)
    killed: list[int] = []
    counted: list[int] = []

    def count(n: int) -> None:
        """On the first finished job, kill every worker: the other one is in the middle of its job."""
        if not killed:
            killed.extend(worker_pids())
            for pid in killed:
                os.kill(pid, signal.SIGKILL)
        counted.append(n)

    try:
        found = executor.run(jobs, count)
        alive = worker_pids()
    finally:
        executor.close()
    assert len(killed) == 2 and not set(killed) & set(alive)
    assert len(alive) == 2  # both actors restarted
    assert counted == [2, 2, 2, 2]  # one count per job, the retried one too
    here = InProcess(lambda: load_model(config.model, config.root)).run(jobs)
    for remote, local in zip(found, here):
        for a, b in zip(remote, local):
            np.testing.assert_array_equal(a.image, b.image)
            assert a.activation == b.activation


def test_an_unreachable_address_is_one_line(tiny_project, monkeypatch, capsys):
    monkeypatch.chdir(tiny_project)
    for args, message in [
        (["--executor", "ray", "--address", "127.0.0.1:1"],
         "error: --address 127.0.0.1:1: no Ray cluster answers there (Connection refused); "
         "start one with `ray start --head` or leave --address out"),
        (["--executor", "ray", "--address", "head-node"],
         "error: --address 'head-node': expected host:port (a Ray head, e.g. 10.0.0.5:6379), ray://host:port or auto"),
        (["--address", "127.0.0.1:6379"], "error: --address and --workers need --executor ray"),
        (["--executor", "spark"], "error: --executor 'spark': allowed: local, ray"),
    ]:
        assert cli.main(["build", *args]) == 2
        assert capsys.readouterr().err.strip().splitlines()[-1] == message
        assert not (tiny_project / "docs" / "generated").exists()


def test_exciter_jobs_carry_the_precision_the_cache_key_names(tiny_project):
    """``auto`` is decided by the build's machine, never again by a worker whose CPU may differ."""
    from generator.analyses import Analyses, exciter_key
    from generator.analysis.precision import resolve_precision
    from generator.cache import Cache
    from generator.results import Unit

    class Recording(InProcess):
        def run(self, jobs, progress=None):
            self.jobs = list(jobs)
            return super().run(jobs, progress)

    config = load_config(tiny_project / "site_config.yaml")
    recording = Recording(lambda: analyses.model)
    analyses = Analyses(config, Cache(tiny_project / "cache"), recording)
    params = ExciterParams(steps=2, size=16, precision="auto")
    found = analyses.exciters([Unit("c3", 0), Unit("c3", 1)], params, "exciters")
    assert len(found) == 2 and found[Unit("c3", 0)].image.shape == (16, 16, 3)
    (job,) = recording.jobs
    assert job.args[2].precision == resolve_precision("auto") == exciter_key(params)["precision"] != "auto"
