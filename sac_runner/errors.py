"""The failures a command reports in one line: what went wrong, what was kept, what to do.

They are raised anywhere in the package and turned into that line (and an exit code) by the command
line layer (cli/one_line_errors.py). Input the user can fix is a user error (exit 2); a run that
cannot go on for another reason is a run failure (exit 1).
"""


class ConfigError(ValueError):
    """A config value that is well-typed but invalid. The message names the key and the fix."""


class EnvError(ValueError):
    """An environment that cannot be built or used; the message names the problem and the fix."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message says which file and what to do."""


class CheckpointWriteError(OSError):
    """A checkpoint that could not be written (disk full, quota, read-only); the previous one is intact."""


class RunFailure(RuntimeError):
    """A run that cannot go on (non-finite update, checkpoint write failed, environment broken too often);
    the message says what happened, what was kept and what to do."""


USER_ERRORS = (ConfigError, EnvError, CheckpointError)
