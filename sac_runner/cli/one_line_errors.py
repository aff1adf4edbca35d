"""User errors end a command with one clear line and exit code 2, never a traceback.

Two layers: `exit_on_user_error` wraps the task function (a bad value, environment or checkpoint found
while the run is set up), and `one_line_config_errors` wraps `@hydra.main` itself, so that Hydra's own
composition errors (a misspelled group option, an unknown key, a value of the wrong type, an override
it cannot parse), which Hydra prints over several lines with exit code 1, read the same way.
Faults during a run that are not the user's input (a diverged update, a full disk, a broken
environment) end it with exit code 1 and one line as well: `RunFailure`. The exceptions themselves
live in sac_runner/errors.py.
"""

from __future__ import annotations

import dataclasses
import errno
import difflib
import functools
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.experimental.callback import Callback
from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from omegaconf.errors import (ConfigAttributeError, ConfigKeyError, MissingMandatoryValue, OmegaConfBaseException,
                              ValidationError)

from sac_runner.run.run_config import MOVED_KEYS, moved_key_message
from sac_runner.errors import USER_ERRORS, CheckpointWriteError, RunFailure
from sac_runner.run.run_dir import HYDRA

EXIT_USER_ERROR = 2
EXIT_RUN_FAILURE = 1
EXIT_INTERRUPTED = 128 + signal.SIGINT  # as a shell reports a program that SIGINT ended
WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG, errno.ENOTDIR)


def _fail(message: str, code: int) -> None:
    print(f"error: {message}", file=sys.stderr)
    if code == EXIT_USER_ERROR:
        LeaveNothingWhenRefused.undo()
    raise SystemExit(code)


def _hydra_written(run_dir: Path) -> list[Path]:
    """Where Hydra writes in a run directory: its top level (the log) and .hydra/ (the config record)."""
    return [*run_dir.iterdir(), *(run_dir / HYDRA).rglob("*")] if run_dir.is_dir() else []


class LeaveNothingWhenRefused(Callback):
    """A refused command leaves nothing behind. Hydra creates the run directory, writes `.hydra/` and
    opens the log before the command sees its config; when the command then refuses its input (exit 2),
    what this call added is removed: a new run directory (and the parents it needed) entirely, and in
    an existing directory (a refused resume=) only the files and folders this call created, with the
    log cut back to its old length. Listed under hydra.callbacks in conf/config.yaml, eval.yaml and
    export.yaml; sweeps keep their jobs' directories (a failed job writes failure.txt there)."""

    _before: "tuple[Path, Path | None, dict[Path, int]] | None" = None

    def on_run_start(self, config: Any, **kwargs: Any) -> None:
        run_dir = Path(str(config.hydra.run.dir)).absolute()
        first_new = None
        for directory in (run_dir, *run_dir.parents):
            if directory.exists():
                break
            first_new = directory
        held = {} if first_new else {p: (p.stat().st_size if p.is_file() else -1) for p in _hydra_written(run_dir)}
        LeaveNothingWhenRefused._before = (run_dir, first_new, held)

    @classmethod
    def undo(cls) -> None:
        if cls._before is None:
            return
        run_dir, first_new, held = cls._before
        cls._before = None
        try:
            if first_new is not None:
                shutil.rmtree(first_new, ignore_errors=True)
                return
            for path in sorted(_hydra_written(run_dir), key=lambda p: len(p.parts), reverse=True):
                if path not in held:
                    shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink(missing_ok=True)
                elif held[path] >= 0 and path.is_file() and path.stat().st_size > held[path]:
                    os.truncate(path, held[path])  # the log this call appended to
        except OSError:
            pass  # best effort: the refusal itself is what the user needs to see


def exit_on_user_error(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except USER_ERRORS as error:
            _fail(str(error), EXIT_USER_ERROR)
        except OmegaConfBaseException as error:  # e.g. a mandatory value (???) left unset
            _fail(describe_config_error(error), EXIT_USER_ERROR)
        except (RunFailure, CheckpointWriteError) as error:
            _fail(str(error), EXIT_RUN_FAILURE)
        except OSError as error:  # a file the run writes: disk full, quota, read-only, permissions
            _fail_on_write_error(error)
    return wrapper


def _fail_on_write_error(error: OSError) -> None:
    if error.errno not in WRITE_ERRNOS:
        raise error
    _fail(f"could not write {error.filename or 'a file'} ({error.strerror}); the files written before are "
          "intact; free some disk space or choose a writable output directory (hydra.run.dir=...)", EXIT_RUN_FAILURE)


def hydra_command(config_name: str):
    """A console script's Hydra entry point: the primary config conf/<config_name>.yaml (shipped as
    sac_runner.conf), every failure as one line (both layers, see the module docstring)."""

    def decorate(task):
        main = hydra.main(version_base="1.3", config_path="pkg://sac_runner.conf", config_name=config_name)
        return one_line_config_errors(main(exit_on_user_error(task)))

    return decorate


def one_line_config_errors(hydra_main):
    """The outermost decorator of a `@hydra.main` function (see the module docstring).

    Hydra re-raises instead of printing when HYDRA_FULL_ERROR=1; it is set for the call. A user who set it
    themselves gets Hydra's full traceback, as Hydra documents."""

    @functools.wraps(hydra_main)
    def wrapper():
        previous = os.environ.get("HYDRA_FULL_ERROR")
        os.environ["HYDRA_FULL_ERROR"] = "1"
        try:
            return hydra_main()
        except (HydraException, OmegaConfBaseException) as error:
            if previous == "1":
                raise
            _fail(describe_config_error(error), EXIT_USER_ERROR)
        except OSError as error:  # Hydra could not create the output directory
            if previous == "1":
                raise
            _fail_on_write_error(error)
        except KeyboardInterrupt:  # a second Ctrl-C, or one before a run could stop at a checkpoint
            _fail("interrupted: stopped at once; what was written before is intact (a run continues from its "
                  "last checkpoint: sac-train resume=<run dir>; a sweep with the same sac-train -m command)",
                  EXIT_INTERRUPTED)
        finally:
            if previous is None:
                os.environ.pop("HYDRA_FULL_ERROR", None)
            else:
                os.environ["HYDRA_FULL_ERROR"] = previous

    return wrapper


def _first_line(text: object) -> str:
    return next((line.strip() for line in str(text).splitlines() if line.strip()), "")


def _closest(word: str, options: list[str], prefix: str = "") -> str:
    """'did you mean <prefix><closest option>? ', or '' when none is close."""
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.5)
    return f"did you mean {prefix}{close[0]}? " if close else ""


def describe_config_error(error: Exception) -> str:
    """One line for an error Hydra or OmegaConf raised while composing the config."""
    cause = error.__cause__ if isinstance(error.__cause__, OmegaConfBaseException) else None
    if isinstance(error, MissingConfigException) and error.options is not None and error.missing_cfg_file:
        group, _, option = error.missing_cfg_file.rpartition("/")
        return (f"{group}={option}: no such option in group '{group}'; {_closest(option, list(error.options))}"
                f"available: {', '.join(error.options)}")
    if isinstance(error, OverrideParseException):
        return (f"cannot parse the override: {_first_line(error)}; overrides are key=value, "
                "e.g. agent.alpha=0.2 or agent.hidden_sizes=[256,256]")
    omegaconf_error = cause or (error if isinstance(error, OmegaConfBaseException) else None)
    program = os.path.basename(sys.argv[0]) or "sac-train"
    if isinstance(omegaconf_error, (ConfigKeyError, ConfigAttributeError)):
        key = omegaconf_error.full_key or omegaconf_error.key
        if key in MOVED_KEYS:
            return moved_key_message(key)
        fields = _fields_of(omegaconf_error.object_type)
        if not fields:  # a free-form dict such as env.kwargs: new keys are added with +
            return f"unknown key {key}; add a new key with +{key}=<value>"
        parent = str(key).rpartition(".")[0]
        hint = _closest(str(omegaconf_error.key), fields, prefix=f"{parent}." if parent else "")
        return f"unknown key {key}; {hint}`{program} --cfg job` prints every key and its value"
    if isinstance(omegaconf_error, MissingMandatoryValue):
        key = omegaconf_error.full_key
        return f"{key} is required; give {key}=<value> (`{program} --help` says what it takes)"
    if isinstance(omegaconf_error, ValidationError):
        key = omegaconf_error.full_key
        default = _default_of(omegaconf_error.object_type, str(omegaconf_error.key))
        fix = f"e.g. {key}={default} (its default)" if default is not None else "a value of the key's type"
        return f"{key}: {_first_line(omegaconf_error.msg)}; give {fix}"
    if omegaconf_error is not None:
        key = omegaconf_error.full_key
        return f"{key + ': ' if key else ''}{_first_line(omegaconf_error.msg)}; `{program} --help` lists the options"
    return f"{_first_line(error)}; `--help` lists the groups and options"


def _fields_of(object_type: object) -> list[str]:
    return [f.name for f in dataclasses.fields(object_type)] if dataclasses.is_dataclass(object_type) else []


def _default_of(object_type: object, key: str) -> object | None:
    if not dataclasses.is_dataclass(object_type):
        return None
    for f in dataclasses.fields(object_type):
        if f.name == key and f.default is not dataclasses.MISSING and f.default is not None:
            return f.default
    return None
