"""The grader's two errors: its own failure, and a command it cannot carry out."""


class GraderError(RuntimeError):
    """The grader itself failed (not the submission): the pair is retried on a re-run."""


class UsageError(ValueError):
    """The command was given something it cannot grade; nothing was written."""
