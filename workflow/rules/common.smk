# Shared helpers: the validated params, the run lists, and the package files each step runs.
import dataclasses
import json
from pathlib import Path

import affsr
from affsr.code_graph import function_imports, import_graph, module_files, source_files
from affsr.errors import ConfigError
from affsr.methods import super_resolves
from affsr.params import (generator_of, load_params, read_yaml, resolve, resolve_dataset, resolve_toy, rule_resources,
                          select_study)
from affsr.data.sources import SOURCES

try:
    for _file in workflow.configfiles:  # Snakemake's YAML keeps a duplicated key's last value silently
        read_yaml(Path(_file))
    PARAMS = load_params(config, command_line=workflow.config_settings.config)
except ConfigError as err:  # the message names params.yaml or --config, and the dotted key
    raise WorkflowError(str(err)) from None

STUDY = PARAMS.study  # demo | paper (`--config study=paper`)
DATASETS = list(PARAMS.datasets)
METHODS = list(PARAMS.methods)  # every training run, auxiliary ones (denoiser, density models) too
SR_METHODS = [m for m in METHODS if super_resolves(PARAMS.methods[m].objective)]
STOCHASTIC = [m for m in SR_METHODS if generator_of(PARAMS, m)["noise"] > 0]
HELDOUT_DENSITY = PARAMS.evaluate.density  # a method name, or "" for no cross-entropy
REFERENCES = list(PARAMS.evaluate.references) + ["hr"]  # hr: the real images, the realism floor
EVALUATED = REFERENCES + SR_METHODS
PACKAGE = Path(affsr.__file__).parent  # the installed (editable) package: the code the rules run
CONDA_ENV = "../envs/affsr.yaml"
ROOT = Path.cwd()  # the repository: this file is read before a study's `workdir:` applies
# the lock the venv was installed from (docs/running.md, "Installing"), beside the package in a checkout
LOCK_FILE = [str(lock) for lock in [PACKAGE.parent / "requirements" / "lock.txt"] if lock.is_file()]


def _other_tiers():
    """tier → its results/metrics.csv, for the other studies of `evaluate.tiers` whose results exist:
    claims.md shows their verdicts beside this study's (a tier run later reruns the claims rule)."""
    own = (ROOT / (PARAMS.workdir or "") / "results" / "metrics.csv").resolve()
    found = {}
    for tier in PARAMS.evaluate.tiers:
        if tier == STUDY or (tier != "demo" and not config.get(tier)):  # this study, or none of that name
            continue
        path = ROOT / (select_study({**config, "study": tier}).get("workdir") or "") / "results" / "metrics.csv"
        if path.is_file() and path.resolve() != own:
            found[tier] = str(path)
    return found


OTHER_TIERS = _other_tiers()

# The package files each step runs, as its inputs (editing one reruns the step); derived, never listed.
# A rule runs `affsr <verb>`, and affsr/cli.py imports the verb's implementation inside `cmd_<verb>`, so
# the files are affsr/cli.py, what it imports at module level, what `cmd_<verb>` (and the helpers it
# calls) import, and everything those modules import in turn (affsr/code_graph.py reads the imports with
# `ast`). A module split or renamed is followed at the next parse. The methods package loads an
# objective by name; the graph is read without those dynamic edges and each job adds the objective
# modules it runs (a training run: its objective and its guide's; an evaluation: the run's and the
# held-out density model's; the toy: those of its runs), so a new objective file reruns nothing and an
# edited one reruns exactly the jobs that use it. A change known not to matter (a comment):
# `snakemake --touch` marks outputs current.
def _code_files(verbs):
    """verb → sorted affsr source files `affsr <verb>` runs; read once per parse."""
    files, graph = module_files(PACKAGE), import_graph(PACKAGE, dynamic=False)
    if "affsr.cli" not in files:
        raise WorkflowError(f"{PACKAGE}/cli.py not found: every rule runs `affsr <verb>` (affsr.cli)")
    at_import = import_graph(PACKAGE, lazy=False, dynamic=False)["affsr.cli"]  # runs before any verb
    code = {}
    for verb in verbs:
        try:
            entries = function_imports(PACKAGE, "affsr.cli", f"cmd_{verb}")
        except KeyError as err:
            raise WorkflowError(f"`affsr {verb}` (a rule's command): {err.args[0]} — the workflow takes the "
                                f"files a rule depends on from the imports of cmd_{verb}") from None
        code[verb] = sorted({str(files["affsr.cli"]), *source_files(PACKAGE, entries | at_import, graph)})
    return code


# every verb the rules run (each names its own, `code("figures")` beside `affsr figures`)
CODE_FILES = _code_files(["download", "prepare", "train", "evaluate", "aggregate", "figures", "toy", "claims",
                          "provenance"])


OBJECTIVE_GRAPH = import_graph(PACKAGE, dynamic=False)


def code(verb, objectives=()):
    """The affsr source files `affsr <verb>` runs, as a rule's inputs: editing one reruns the rule;
    ``objectives``: the objective modules (affsr/methods/<name>.py, with what they import) the job loads
    by name."""
    extra = source_files(PACKAGE, {f"affsr.methods.{name}" for name in objectives}, OBJECTIVE_GRAPH)
    return sorted({*CODE_FILES[verb], *extra})


def objectives_of(*methods):
    """The objectives of these params methods (empty names skipped), in order, without repeats."""
    return list(dict.fromkeys(PARAMS.methods[m].objective for m in methods if m))


def train_code(wildcards):
    """A training run's code: the loop's files, its objective's and its guide's (the guide is rebuilt)."""
    method = PARAMS.methods[wildcards.method]
    return code("train", objectives_of(wildcards.method, method.guide))


def evaluate_code(wildcards):
    """An evaluation's code: a trained run's objective (its model is rebuilt) and the density model's."""
    trained = wildcards.method if wildcards.method not in REFERENCES else ""
    return code("evaluate", objectives_of(trained, HELDOUT_DENSITY))


def toy_code(wildcards):
    """The toy's code: the objectives of its runs and their guides."""
    runs = resolve_toy(PARAMS)
    return code("toy", [run["objective"] for run in (*runs["methods"].values(), *runs["guides"].values())])


def run_settings(wildcards):
    """Resolved settings of one training run, as JSON (a params change reruns exactly this run)."""
    return json.dumps(resolve(PARAMS, wildcards.dataset, wildcards.method), sort_keys=True)


def train_priority(wildcards):
    """A training run's priority: the samples it trains on (steps × batch size), so the longest runs start
    first and short ones fill the cores at the end (a long GAN run started last leaves the other cores
    idle: `study: cpu` on 2 cores, docs/studies.md)."""
    train = resolve(PARAMS, wildcards.dataset, wildcards.method)["train"]
    return int(train["steps"]) * int(train["batch_size"])


def toy_settings(wildcards):
    return json.dumps(resolve_toy(PARAMS), sort_keys=True)


def dataset_settings(wildcards):
    return json.dumps(resolve_dataset(PARAMS, wildcards.dataset), sort_keys=True)


def trained_checkpoint(wildcards):
    """A trained run's checkpoint; references (bicubic, pinv, hr) need none."""
    if wildcards.method in REFERENCES:
        return []
    return [f"runs/{wildcards.dataset}/{wildcards.method}/model.pt"]


def train_split(wildcards):
    """The split a run trains on (`split:` of the method: train, or val for the held-out density)."""
    return f"data/{wildcards.dataset}/{PARAMS.methods[wildcards.method].split}.npz"


def guide_checkpoint(wildcards):
    """The auxiliary run whose snapshots guide this one (AffDG: the denoiser; AffLL: the density)."""
    guide = PARAMS.methods[wildcards.method].guide
    return [f"runs/{wildcards.dataset}/{guide}/model.pt"] if guide else []


def density_checkpoint(wildcards):
    """The held-out density model that scores every method's outputs (cross-entropy)."""
    return [f"runs/{wildcards.dataset}/{HELDOUT_DENSITY}/model.pt"] if HELDOUT_DENSITY else []


def option(flag, paths):
    """`--flag path` for an optional single input, or nothing."""
    return f"{flag} {paths[0]}" if paths else ""


def downloaded_file(wildcards):
    """The archive a downloaded source reads (the download rule's output), or nothing."""
    ds = PARAMS.datasets[wildcards.dataset]
    if SOURCES[ds.source].input != "download":
        return []
    return [f"data/downloads/{wildcards.dataset}/{ds.download.filename}"]


def resources(rule):
    """(threads, resources dict) of a rule's jobs, from params `resources:`."""
    r = rule_resources(PARAMS, rule)
    return r.threads, {"mem_mb": r.mem_mb, "runtime": r.runtime, "gpu": r.gpu}
