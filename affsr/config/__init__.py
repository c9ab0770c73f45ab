"""The settings of affsr: params.yaml as frozen, typed dataclasses, parsed strictly. The bottom layer:
it imports nothing of affsr but the error types.

Every section of params.yaml has a dataclass here; each checks its own ranges in ``__post_init__``
(``ValueError("key: must be ...")``, reported by :func:`affsr.config.parse.from_dict` under the dotted key),
so a bad value is refused when params are loaded — by ``snakemake -n`` already — and never reaches a
training job. Checks that need other packages (objective names, sources, operator kinds) live in
:mod:`affsr.params`, which also turns the whole file into the flat settings of one run (``resolve``);
:class:`RunSettings` is that dict's typed view, as the CLI and checkpoints carry it.

* :mod:`~affsr.config.parse` — mappings → dataclasses: unknown keys and wrong types are errors;
* :mod:`~affsr.config.data` — the data side: the operator A, downloads, data sets, the splits;
* :mod:`~affsr.config.networks` — the generator, discriminator, denoiser and density model;
* :mod:`~affsr.config.training` — the shared loop and one trained method;
* :mod:`~affsr.config.study` — evaluation, the 2-D toy, resources, all of params.yaml, one run;
* :mod:`~affsr.config.limits` — how large a value may be: counts, seeds, the memory a job needs at least.
"""

from affsr.lazy_exports import exports

__getattr__, __dir__, __all__ = exports(__name__, {
    "SPLITS": "data",
    "TRAINING_SPLITS": "data",
    "OperatorConfig": "data",
    "DownloadConfig": "data",
    "DatasetConfig": "data",
    "GeneratorConfig": "networks",
    "DiscriminatorConfig": "networks",
    "DenoiserConfig": "networks",
    "DensityConfig": "networks",
    "MAX_COUNT": "limits",
    "SEED_LIMIT": "limits",
    "close_match_hint": "parse",
    "check_choice": "parse",
    "from_dict": "parse",
    "check_ranges": "parse",
    "check_one_of": "parse",
    "REFERENCES": "study",
    "EvaluateConfig": "study",
    "ToyOverride": "study",
    "ToyConfig": "study",
    "ResourceConfig": "study",
    "RULES_WITH_RESOURCES": "study",
    "STUDIES": "study",
    "STUDY_SECTIONS": "study",
    "Params": "study",
    "RunSettings": "study",
    "CONSTRAINTS": "training",
    "DEVICES": "training",
    "TrainConfig": "training",
    "MethodConfig": "training",
})
