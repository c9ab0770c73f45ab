"""How large a value of params.yaml may be: the upper limits of counts and seeds, and the memory a job
needs at the least, set against the job's ``resources: mem_mb``.

Why: a value can pass every type and sign check and still be one no job can run with — ``steps: 1e23``
trains for ever, ``batch_size: 100000000`` or ``n_test: 100000000`` allocate terabytes, and each of those
used to fail minutes later in a job with a traceback. The plan (``snakemake -n``, and every ``affsr`` verb
that reads params.yaml) refuses them here, in one line naming the key, the limit and what to change.

Two rules:

* **Counts** (steps, images, batch sizes, layers, maps, repeats) are at most :data:`MAX_COUNT`; the seed
  lies in [0, :data:`SEED_LIMIT`). Each settings dataclass lists its counts (``check_ranges(counts=...)``).
* **Memory**: each rule's job needs at least the arrays it must hold (:func:`image_bytes`,
  :func:`batch_bytes`; affsr.params adds them up per job). These are lower bounds of what is measured
  (docs/benchmarks.md, "Peak memory per rule"), so a refusal is a clear excess, never a close call: a job
  that passes may still need more, but a job that fails cannot fit.

Pure arithmetic on plain numbers: the facts it needs from other packages (a source's channels, how many
images it holds) are passed in by :mod:`affsr.params`.
"""

from __future__ import annotations

from dataclasses import dataclass

from affsr.errors import ConfigError

#: The largest count of anything (steps, images, a batch, layers, maps, restarts) a setting may give.
#: Why 10⁹: a count beyond it cannot finish and cannot be held — 10⁹ training steps are days of compute
#: even at 0.1 ms per step (a step launches tens of kernels, each ≈ 10 µs on a GPU; a CPU step of the
#: smallest demo network takes milliseconds), and 10⁹ images of even 8×8 grey are 64 GB. It also keeps
#: every count below 2³¹ (int32, where torch and numpy index compactly) and exact in the float products
#: it meets (steps × steps_scale, the step fractions of schedules).
MAX_COUNT = 10**9

#: Seeds lie in [0, 2³²): numpy's generators refuse negative seeds, torch's take at most 2⁶⁴ − 1, and the
#: toy derives seed · 1000 + slot; 32 bits — the classic seed range — satisfies all three.
SEED_LIMIT = 2**32

#: What one MB of ``mem_mb`` is taken to be: 2²⁰ bytes (SLURM's unit; Snakemake's 10⁶ is smaller), the
#: generous reading, so a refusal never rests on the unit.
MB = 2**20

#: GPU memory no single accelerator exceeds (the largest of 2025 hold 192–288 GB): what a GPU job's
#: training batch is set against, since params.yaml states the host's memory only.
GPU_MEMORY_MB = 300_000

#: float32 images of HR size that evaluation holds per test image at least: the method's output and the
#: HR image as floats, which every metric compares (measured: ≈ 20 such copies, docs/benchmarks.md).
EVALUATE_COPIES = 2


def image_bytes(channels: int, hr_size: int, scale: int) -> float:
    """Bytes of one prepared image as ``affsr prepare`` holds it and a training or evaluation job loads it:
    uint8 HR (C·H² bytes) plus float32 LR (4·C·(H/s)² bytes)."""
    return channels * hr_size**2 * (1 + 4 / scale**2)


def batch_bytes(channels: int, hr_size: int, maps: int) -> float:
    """Bytes one image of a training batch takes at least, float32: three HR-size images — the HR image,
    the unpaired HR draw beside it (:mod:`affsr.training.batches`) and the network's output — and ``maps``
    feature maps at HR size (a generator's last upsampling stage keeps its ``width`` maps for the backward
    pass; 0 for runs without a generator)."""
    return 4 * hr_size**2 * (3 * channels + maps)


@dataclass(frozen=True)
class Term:
    """One part of a job's memory: ``count`` (the value of setting ``key``, a dotted params path) times
    ``each`` bytes; ``what`` says what is counted, e.g. "test images of 1×32×32"."""

    key: str
    count: int
    each: float
    what: str

    @property
    def bytes(self) -> float:
        return self.count * self.each


def check_memory(terms: list[Term], limit_mb: int, job: str, limit_key: str = "") -> None:
    """ConfigError unless ``terms`` fit in ``limit_mb`` MB, the limit set by ``limit_key`` (e.g.
    ``resources.train.mem_mb``; "" for :data:`GPU_MEMORY_MB`, which no setting raises). The error names the
    key of the largest term, the memory the ``job`` needs at least, the limit, and how many would fit."""
    total = sum(t.bytes for t in terms)
    if total <= limit_mb * MB:
        return
    worst = max(terms, key=lambda t: t.bytes)
    rest = total - worst.bytes
    fit = int((limit_mb * MB - rest) // worst.each)
    limit = f"{limit_key} = {limit_mb:,} MB" if limit_key else f"the {limit_mb:,} MB no single GPU exceeds"
    raise_it = f" or raise {limit_key}" if limit_key else ""
    hint = (f"at most {fit:,} fit: lower {worst.key.removeprefix('params.')}{raise_it}" if fit >= 1 else
            f"the rest of the job alone needs {rest / MB:,.0f} MB{raise_it.replace(' or', ':')}")
    raise ConfigError(f"{worst.key}: {worst.count:,} {worst.what} make {job} need at least {total / MB:,.0f} MB, "
                      f"more than {limit}; {hint}")
