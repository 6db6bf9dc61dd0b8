"""The ``datasource: CernVM:`` settings of the amiconfig run, read once.

``amiconfig_command``, ``amiconfig_timeout`` and ``amiconfig_done_file``,
each falling back to its default with a one-line message; and
:func:`positive_seconds`, the reader of a timeout setting, which the HEPiX
site context's ``hepix_timeout`` uses too. Apart from the run itself so
that reading the configuration needs nothing of running.

Standard library only.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping

from cloudinit_cernvm import redact

DEFAULT_COMMAND = "/usr/sbin/amiconfig"
DEFAULT_TIMEOUT = 600.0
#: what CernVM's ``amiconfig.sh`` touches after a run, and checks before one
DONE_FILE = "/var/lib/amiconfig/user.done"


class Settings:
    """``datasource: CernVM:`` settings of the amiconfig run.

    The records of this module are plain classes, not dataclasses: see
    ``seed.Seed``.
    """

    __slots__ = ("command", "done_file", "timeout")

    def __init__(self, command: list[str] | None = None, timeout: float = DEFAULT_TIMEOUT,
                 done_file: str = DONE_FILE) -> None:
        self.command = [DEFAULT_COMMAND] if command is None else command
        self.timeout = timeout
        self.done_file = done_file

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Settings) and (
            (self.command, self.timeout, self.done_file)
            == (other.command, other.timeout, other.done_file))

    def __repr__(self) -> str:
        return (f"Settings(command={self.command!r}, timeout={self.timeout!r}, "
                f"done_file={self.done_file!r})")


def positive_seconds(cfg: Mapping, name: str, default: float, problems: list[str]) -> float:
    """The setting NAME of CFG as positive seconds; DEFAULT when unset, or when
    bad, with a message in PROBLEMS (the boot goes on with the default)."""
    value = cfg.get(name)
    if value is None:
        return default
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if seconds > 0 and not isinstance(value, bool):
        return seconds
    problems.append(f"{name} {value!r} is not a positive number of seconds; using {default:g}")
    return default


def settings_from(ds_cfg: Mapping | None) -> tuple[Settings, list[str]]:
    """Read the settings; a bad value falls back to its default, with a message.

    ``amiconfig_command`` is a path, a command line (split like the shell
    does) or a list; ``amiconfig_timeout`` a positive number of seconds;
    ``amiconfig_done_file`` where the run is marked done.
    """
    cfg = ds_cfg if isinstance(ds_cfg, Mapping) else {}
    settings = Settings()
    problems: list[str] = []
    command = cfg.get("amiconfig_command")
    if command is not None:
        argv: list[str] | None = None
        if isinstance(command, str) and command.strip():
            try:
                argv = shlex.split(command)
            except ValueError:
                argv = None
        elif isinstance(command, list) and command and all(isinstance(a, str) for a in command):
            argv = list(command)
        if argv:
            settings.command = argv
        else:
            problems.append(f"amiconfig_command {redact.redact_text(repr(command))} is not a"
                            f" command; using {DEFAULT_COMMAND}")
    settings.timeout = positive_seconds(cfg, "amiconfig_timeout", DEFAULT_TIMEOUT, problems)
    done_file = cfg.get("amiconfig_done_file")
    if done_file is not None:
        if isinstance(done_file, str) and os.path.isabs(done_file):
            settings.done_file = done_file
        else:
            problems.append(f"amiconfig_done_file {done_file!r} is not an absolute path;"
                            f" using {DONE_FILE}")
    return settings, problems
