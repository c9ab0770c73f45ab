"""The error type for bad data, shared by the modules that read it (data, sources, images, download).

Its own module so that those modules can raise it without importing each other.
"""


class DataError(ValueError):
    """A dataset file or setting is missing, corrupt or inconsistent; the message says which and what to do."""
