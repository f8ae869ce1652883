"""`docforge mix check`: what a manifest will feed the trainer, per source, before any GPU is spent.

Opens every source's shard list (sample counts from `index.json`, else by reading the tars), and
reports shards, samples, weight share, the epochs a run of N samples makes over each source, and,
given a tokenizer, the text tokens per sample and in all (measured on rendered conversations).
"""

from __future__ import annotations

import random
import statistics
from dataclasses import dataclass, field

from mixtures.manifest import Mixture, Source
from mixtures.tasks import TaskError, render_conversation
from pipelines.shard_reader import first_samples, iter_tar_samples
from pipelines.storage import open_url

TOKEN_PROBE = 32  # conversations rendered per source to measure tokens per sample


@dataclass
class SourceReport:
    name: str
    shards: int
    samples: int
    share: float
    tasks: str
    epochs: float | None = None
    tokens_per_sample: float | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def tokens(self) -> float | None:
        return None if self.tokens_per_sample is None else self.tokens_per_sample * self.samples


def count_samples(source: Source, problems: list[str]) -> int:
    """Samples of a source: index.json counts where known, else every tar is read."""
    total = 0
    for shard in source.shards:
        if shard.samples is not None:
            total += shard.samples
            continue
        errors: list[Exception] = []
        try:
            with open_url(shard.url, "rb") as stream:
                total += sum(1 for _ in iter_tar_samples(stream, shard.url, errors))
        except OSError as exn:
            errors.append(exn)
        if errors:
            problems.append(f"{shard.url}: unreadable ({errors[0]})")
    return total


def tokens_per_sample(source: Source, seed: int, tokenizer, problems: list[str]) -> float | None:
    lengths = []
    for sample in first_samples([shard.url for shard in source.shards], TOKEN_PROBE):
        rng = random.Random(f"{seed}:{source.name}:check:{sample['__key__']}")
        task = rng.choices([t for t, _ in source.tasks], weights=[w for _, w in source.tasks])[0]
        try:
            turns = render_conversation(task, sample, rng, lang=source.lang, prompts=source.prompts)
        except TaskError as exn:
            problems.append(str(exn))
            continue
        lengths.append(sum(len(tokenizer(turn["content"])["input_ids"]) for turn in turns))
    return statistics.mean(lengths) if lengths else None


def check_mixture(mixture: Mixture, run_samples: int | None = None, tokenizer=None) -> list[SourceReport]:
    shares = mixture.weight_shares()
    reports = []
    for source in mixture.sources:
        problems: list[str] = []
        samples = count_samples(source, problems)
        report = SourceReport(source.name, len(source.shards), samples, shares[source.name],
                              ", ".join(f"{t}:{w:g}" for t, w in source.tasks), problems=problems)
        if samples == 0:
            problems.append("no samples")
        elif run_samples:
            report.epochs = run_samples * report.share / samples
        if tokenizer is not None and samples:
            report.tokens_per_sample = tokens_per_sample(source, mixture.seed, tokenizer, problems)
        reports.append(report)
    return reports
