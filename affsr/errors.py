"""Error types shared across modules, in a module of their own so that raising or catching one (the
CLI turns each into a one-line message) imports nothing heavy and creates no import cycles; and
:func:`note`, the one-line ``affsr: note:`` a library step prints while it carries on."""

import sys


class ConfigError(ValueError):
    """A user mistake in params.yaml, a ``--config`` value or the settings given to the CLI; the message
    names the dotted key (and where it came from)."""


class DataError(ValueError):
    """A dataset file or setting is missing, corrupt or inconsistent; the message says which and what to do."""


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable or from another configuration (names the file)."""


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. a non-finite loss); the message names the step and the saved state."""


class Interrupted(TrainingError):
    """SIGTERM / SIGUSR1 (SLURM preemption or time limit) or SIGINT (Ctrl-C) arrived: the state was saved;
    rerun to resume. ``signum``: the signal (the CLI exits 130 for Ctrl-C, 75 for a scheduler's)."""

    def __init__(self, message: str, signum: int = 15):
        super().__init__(message)
        self.signum = signum


#: What the CLI reports as one ``affsr: error:`` line with exit code 2 (a user's mistake, not a bug).
USER_ERRORS = (ConfigError, DataError, CheckpointError)


def note(message: str) -> None:
    """One ``affsr: note:`` line on stderr: something the user may want to know, not an error."""
    print(f"affsr: note: {message}", file=sys.stderr)
