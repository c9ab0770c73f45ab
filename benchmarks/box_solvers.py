"""The box-constrained projection's solvers on the study's own test patches: steps, seconds, residual.

    python benchmarks/box_solvers.py                      # every data set, affgan, batches of 16, tol 1e-6
    python benchmarks/box_solvers.py --datasets natural --methods affgan affmse --solvers auto newton

Input: the test split of each data set (``data/<set>/test.npz``, its float32 LR as the study feeds it) and
the outputs y0 of a trained run (``runs/<set>/<method>/model.pt``, the generator followed by the affine
projection — what the ``projected_box`` constraint hands the solver in training and evaluation). So it
needs a finished ``make study``. Each solver of :func:`affsr.operators.box_projection.project_to_box` gets the same
batches; printed per (set, method, solver): batches converged, the worst max |A y − x|, Newton/interior
steps and CG steps summed, images handed to the interior-point method, and seconds. ``--threads`` fixes
torch's threads (1 by default) so that runs compare.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from affsr.operators.box_projection import METHODS, project_to_box  # noqa: E402
from affsr.training.checkpoint import load_model  # noqa: E402


def outputs(dataset: str, method: str, images: int) -> tuple[object, torch.Tensor, torch.Tensor]:
    """(A, y0, x): the run's operator, its affine-projected outputs and the LR, float64."""
    model, _ = load_model(ROOT / "runs" / dataset / method / "model.pt")
    x = torch.from_numpy(np.load(ROOT / "data" / dataset / "test.npz")["lr"][:images]).double()
    with torch.no_grad():
        f = model.generator(x.to(torch.float32)).double()
    return model.op, model.projection(f, x), x


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["grass", "faces", "natural"])
    parser.add_argument("--methods", nargs="+", default=["affgan"])
    parser.add_argument("--solvers", nargs="+", default=["auto", "newton"], choices=METHODS)
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--tol", type=float, default=1e-6)
    parser.add_argument("--max-iter", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), tol {args.tol:g}, batches of {args.batch}")
    print("| set | method | solver | batches converged | worst max abs(Ay − x) | steps | CG steps | to interior "
          "| s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for dataset in args.datasets:
        for method in args.methods:
            op, y0, x = outputs(dataset, method, args.images)
            for solver in args.solvers:
                done = worst = steps = cg = handed = 0
                start = time.perf_counter()
                for lo in range(0, len(x), args.batch):
                    r = project_to_box(op, y0[lo:lo + args.batch], x[lo:lo + args.batch], tol=args.tol,
                                       max_iter=args.max_iter, method=solver)
                    done += r.converged
                    worst, steps = max(worst, r.residual), steps + r.iterations
                    cg, handed = cg + r.cg_steps, handed + r.fallback
                batches = -(-len(x) // args.batch)
                print(f"| {dataset} | {method} | {solver} | {done}/{batches} | {worst:.1e} | {steps} | {cg} | "
                      f"{handed} | {time.perf_counter() - start:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
