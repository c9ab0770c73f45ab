"""Process start-up cost of an affsr step: what each short-lived training or evaluation process pays
before its first step. The study starts ≈ 80 such processes, so a second here is ≈ 40 s of the 2-core
study's wall time.

    python benchmarks/startup.py [--repeats 5]

Each row is the median wall time of a fresh ``python -c`` over ``--repeats`` runs (one thread):
``python`` alone, ``import torch``, the modules ``affsr train`` and ``affsr evaluate`` import, and the
first ``torch.optim.Adam`` against the first ``affsr.training.adam.Adam`` (torch's imports ``torch._dynamo``).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import time

CASES = {
    "python": "pass",
    "import torch": "import torch",
    "import affsr.cli, affsr.training.run, affsr.evaluation.evaluate": (
        "import affsr.cli, affsr.training.run, affsr.evaluation.evaluate"),
    "torch + first torch.optim.Adam": (
        "import torch; torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)"),
    "torch + first affsr.training.adam.Adam": (
        "import torch; from affsr.training.adam import Adam; Adam([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)"),
}


def wall(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env={"OMP_NUM_THREADS": "1", "PATH": ""})
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    import torch

    print(f"python {platform.python_version()}, torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"median of {args.repeats}")
    print("| process | wall (s) |\n|---|---|")
    for name, code in CASES.items():
        times = [wall(code) for _ in range(args.repeats)]
        print(f"| {name} | {statistics.median(times):.2f} |")


if __name__ == "__main__":
    main()
