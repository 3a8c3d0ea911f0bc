"""The error a stage raises when it cannot go on; the CLI prints its message as one line and exits 1."""


class StageError(RuntimeError):
    """A stage cannot go on; the message says what to do."""
