"""Training: the one loop every method and auxiliary network trains through, and what it needs.

* :mod:`~affsr.training.loop` — :func:`fit`, the loop; :mod:`~affsr.training.resume` — its resume state;
* :mod:`~affsr.training.run` — :func:`train`, one run on images (``affsr train``);
* :mod:`~affsr.training.lock` — :func:`run_lock`, one training job per run at a time;
* :mod:`~affsr.training.build` — the model, any one network and the objective, from a run's settings;
* :mod:`~affsr.training.batches` — seeded training batches; :mod:`~affsr.training.adam` — the optimiser;
* :mod:`~affsr.training.accelerate` — the device, precision, memory format and compilation;
* :mod:`~affsr.training.checkpoint` — checkpoints written and the trained networks loaded back.
"""

from affsr.lazy_exports import exports

__getattr__, __dir__, __all__ = exports(__name__, {
    "fit": "loop",
    "train": "run",
    "run_lock": "lock",
    "RunInUse": "lock",
    "build_model": "build",
    "build_network": "build",
    "objective_in": "build",
    "build_objective": "build",
    "guides_from_snapshots": "build",
    "image_batch_sampler": "batches",
    "Adam": "adam",
    "pick_device": "accelerate",
    "Plan": "accelerate",
    "plan": "accelerate",
    "load_network": "checkpoint",
    "load_model": "checkpoint",
    "load_guides": "checkpoint",
})
