"""The dataset examples: each channel's top images of the examples folder, searched in shards (a mixin
of :class:`generator.analyses.Analyses`), with the jobs a worker runs."""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from generator.analyses.parts import batch_parts
from generator.analysis.distribution import distribution_key
from generator.executor import Job
from generator.results import DatasetExamples


class ExampleAnalyses:
    def examples(self, layers: list[str], files: list[Path], listing: str) -> dict[str, DatasetExamples]:
        """Top images of the examples folder for every channel of each of ``layers``, with their maps; ``listing``
        keys the folder. Each layer's images are searched in shards (one here), whose top tables are merged."""
        size, top_n, seed = self.config.images.size, self.config.browse.examples_top_n, self.config.exciters.seed
        keys = {layer: self._key("examples", layer, listing, top_n, size, seed, distribution_key()) for layer in layers}

        def compute(missing: list[str]) -> dict[str, DatasetExamples]:
            from generator.analysis import examples

            shards = batch_parts(len(files), examples.BATCH, self.executor.parts)
            jobs = [Job(_example_shard_job, (missing, files[s.start:s.stop], s.start, size, top_n, seed), len(s))
                    for s in shards]
            with tqdm(total=len(files), desc="dataset examples", unit="image", disable=None) as bar:
                found = self.executor.run(jobs, bar.update)
            tables = {layer: examples.merge_tables([f[layer] for f in found], top_n) for layer in missing}
            return examples.finish_examples(self.model, tables, size)

        return self.cache.values(keys, DatasetExamples, compute)


def _example_shard_job(loaded, layers: list[str], files: list[Path], first: int, size: int, top_n: int, seed: int,
                       progress=None) -> dict:
    from generator.analysis.examples import example_shard

    return example_shard(loaded, layers, files, first, size, top_n, progress, seed=seed)

