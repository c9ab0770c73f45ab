"""Error types shared across modules, in a module of their own so that raising or catching one (the
CLI turns each into a one-line message) imports nothing heavy and creates no import cycles."""


class DataError(ValueError):
    """A dataset file or setting is missing, corrupt or inconsistent; the message says which and what to do."""


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. a non-finite loss); the message names the step and the saved state."""


class Interrupted(TrainingError):
    """SIGTERM / SIGUSR1 arrived (SLURM preemption or time limit): the state was saved; rerun to resume."""
