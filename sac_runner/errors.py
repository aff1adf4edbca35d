"""User errors end a command with one clear line and exit code 2, never a traceback."""

from __future__ import annotations

import functools
import sys

from sac_runner.checkpoint import CheckpointError
from sac_runner.config import ConfigError
from sac_runner.envs import EnvError

USER_ERRORS = (ConfigError, EnvError, CheckpointError)
EXIT_USER_ERROR = 2


def exit_on_user_error(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except USER_ERRORS as error:
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(EXIT_USER_ERROR) from None
    return wrapper
