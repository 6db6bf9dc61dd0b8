"""The HEPiX site context: a context CD's ``prolog.sh`` and ``epilog.sh``.

CernVM's HEPiX services ran them from a copy of the whole CD in
``/var/lib/hepix/context`` (``CONTEXT_DIR``): ``vmcontext_prolog`` mounted
the CD, copied it there, and in a subshell of that directory sourced
``context.sh`` (its variables shell variables, unquoted by sh) and then
``prolog.sh`` with the argument ``start``, as root, before the user's
contextualization (``vmcontext_hepix``: amiconfig); ``vmcontext_epilog``
sourced ``epilog.sh start`` the same way after it, at the end of the boot.
No time limit; a failure was the init script's status and the boot went on.

Here the microboot stage has kept the scripts and the files they name in
the seed's ``hepix/`` (``microboot/lib/hepix.sh``), and cloud-init runs
them, once per instance:

- the prolog at the part-handlers' ``__begin__`` of the new instance's
  first consume (``handlers.py``), which cloud-init calls for every handler
  before it walks any part of the user-data (boothooks, amiconfig at
  ``__end__``, then cloud-config modules and scripts later): 20.4 to 26.x;
- the epilog by cloud-init's ``scripts_user`` in the final stage, as the
  last of the instance's scripts: a launcher named ``~cernvm-hepix-epilog``
  (``~`` sorts after every other ASCII name, and ``scripts_user`` runs the
  directory in name order) after the user's scripts and ``runcmd``.

Each runs as HEPiX ran it: ``bash -c '. "$0" start' SCRIPT`` (sourced, so
that a top-level ``return`` works; the ``#!`` line does not count), in the
context directory (``hepix_context_dir``, default ``/var/lib/hepix/context``)
holding ``context.sh`` and the kept files, but not the two scripts (the
image's own ``site_context`` sources ``CONTEXT_DIR/prolog.sh`` once more
when it finds it there), with cloud-init's environment plus the
``context.sh`` variables (read by ``contextsh.py``, never sourced here) and
``CONTEXT_DIR``; bounded by ``hepix_timeout`` seconds (default 600), its
whole process group killed past it. The output goes to the instance's
``cernvm/hepix-prolog.log`` / ``hepix-epilog.log`` and, redacted, to the
log; the record ``cernvm/hepix.json`` says what ran. A failure is one line
(a warning for the prolog, in cloud-init's log; a line in
``cloud-init-output.log`` for the epilog, whose launcher always exits 0)
and the boot goes on.

The image's ``vmcontext_prolog`` and ``vmcontext_epilog`` are kept from
running the scripts again by ``packaging/hepix-guard``, which skips them
while this instance's ``hepix.json`` exists.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import stat
import sys
import time
from collections.abc import Mapping

LOG = logging.getLogger(__name__)

#: the seed's sub-directory the microboot stage writes
SEED_SUBDIR = "hepix"
PROLOG = "prolog.sh"
EPILOG = "epilog.sh"
SCRIPTS = (PROLOG, EPILOG)
CONTEXT_SH = "context.sh"
#: the instance's records, in its ``cernvm`` directory
RECORD_NAME = "hepix.json"
COPY_NAME = "hepix"
#: the launcher in the instance's ``scripts`` directory, run last by scripts_user
LAUNCHER_NAME = "~cernvm-hepix-epilog"
DEFAULT_CONTEXT_DIR = "/var/lib/hepix/context"
DEFAULT_TIMEOUT = 600.0
#: what HEPiX sourced the scripts with
SHELLS = ("/bin/bash", "/bin/sh")
#: the bounds of the microboot stage (``microboot/lib/hepix.sh``)
MAX_TOTAL = 16 * 1024 * 1024
MAX_FILES = 64
_NAME = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,254}\Z")


class HepixError(Exception):
    """The seed's site context cannot be used (one-line reason)."""


class Settings:
    """``datasource: CernVM:`` settings of the site context's scripts."""

    __slots__ = ("context_dir", "timeout")

    def __init__(self, context_dir: str = DEFAULT_CONTEXT_DIR,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self.context_dir = context_dir
        self.timeout = timeout


def settings_from(ds_cfg: Mapping | None) -> tuple[Settings, list[str]]:
    """``hepix_context_dir`` (an absolute path, not ``/``) and ``hepix_timeout``
    (positive seconds); a bad value is its default, with a message."""
    cfg = ds_cfg if isinstance(ds_cfg, Mapping) else {}
    settings = Settings()
    problems: list[str] = []
    directory = cfg.get("hepix_context_dir")
    if directory is not None:
        if isinstance(directory, str) and os.path.isabs(directory) and \
                os.path.normpath(directory) != "/":
            settings.context_dir = os.path.normpath(directory)
        else:
            problems.append(f"hepix_context_dir {directory!r} is not an absolute path;"
                            f" using {DEFAULT_CONTEXT_DIR}")
    from cloudinit_cernvm.amiconfig_settings import positive_seconds

    settings.timeout = positive_seconds(cfg, "hepix_timeout", DEFAULT_TIMEOUT, problems)
    return settings, problems


# --- the seed's files ----------------------------------------------------------


def site_files(seed_dir: str) -> dict[str, bytes] | None:
    """The seed's ``hepix/`` files by name, or None when it holds no script.

    The directory decides what runs as root: it must be a real directory,
    owned by root (or this user) and writable by nobody else, as the seed
    is (``seed._check_trust``); its entries regular files with the names and
    within the bounds of the stage. Raises :class:`HepixError` otherwise.
    """
    from cloudinit_cernvm import safefile

    path = os.path.join(seed_dir, SEED_SUBDIR)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as err:
        raise HepixError(f"{path}: {err.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise HepixError(f"{path} is {safefile.kind_of(st.st_mode)}, not a directory")
    _trusted(path, st)
    files: dict[str, bytes] = {}
    total = 0
    for name in sorted(os.listdir(path)):
        if not _NAME.match(name):
            raise HepixError(f"{path} holds a file whose name the stage does not keep")
        target = os.path.join(path, name)
        try:
            _trusted(target, os.lstat(target))
            data = safefile.read_regular(target, MAX_TOTAL - total)
        except OSError as err:
            raise HepixError(f"{target}: {err.strerror or err}") from None
        total += len(data)
        files[name] = data
        if len(files) > MAX_FILES:
            raise HepixError(f"{path} holds more than {MAX_FILES} files")
    if not any(name in files for name in SCRIPTS):
        return None
    return files


def _trusted(path: str, st: os.stat_result) -> None:
    if st.st_mode & 0o022:
        raise HepixError(f"{path} is mode {stat.S_IMODE(st.st_mode):04o}: writable by others,"
                         " so anybody could have written what runs as root")
    if st.st_uid not in (0, os.geteuid()):
        raise HepixError(f"{path} is owned by uid {st.st_uid}, not root")


def context_variables(files: Mapping[str, bytes]) -> dict[str, str]:
    """The ``context.sh`` variables (parsed, never sourced); a value holding
    NUL cannot be in an environment and is left out."""
    from cloudinit_cernvm import contextsh

    raw = files.get(CONTEXT_SH)
    if raw is None:
        return {}
    variables, _ = contextsh.read(raw.decode("utf-8", "surrogateescape"))
    return {k: v for k, v in variables.items() if "\0" not in v}


def environment(base: Mapping[str, str], variables: Mapping[str, str],
                context_dir: str) -> dict[str, str]:
    """cloud-init's environment, the ``context.sh`` variables over it (HEPiX
    sourced them), and ``CONTEXT_DIR``, as ``hepix_functions`` set it."""
    env = dict(base)
    for name, value in variables.items():
        try:
            os.fsencode(name + value)
        except UnicodeError:
            continue
        env[name] = value
    env["CONTEXT_DIR"] = context_dir
    return env


def _write_files(directory: str, files: Mapping[str, bytes], skip: tuple[str, ...] = ()) -> None:
    from cloudinit_cernvm import private_files

    private_files.private_dir(directory)
    for name, data in files.items():
        if name not in skip:
            private_files.write_private(os.path.join(directory, name), data)


def launcher_text(cernvm_dir: str, python: str | None = None) -> str:
    """The script ``scripts_user`` runs: this module's ``epilog`` for the instance."""
    python = python or sys.executable or "/usr/bin/python3"
    return ("#!/bin/sh\n"
            "# cloudinit-cernvm: the site context's epilog.sh, after the user's scripts\n"
            f"exec {shlex.quote(python)} -m cloudinit_cernvm.hepix epilog"
            f" {shlex.quote(cernvm_dir)}\n")


# --- records -------------------------------------------------------------------


def read_record(cernvm_dir: str) -> dict | None:
    """This instance's ``hepix.json``, or None."""
    from cloudinit_cernvm import safefile

    return safefile.read_json_record(os.path.join(cernvm_dir, RECORD_NAME))


def _write_record(cernvm_dir: str, record: Mapping) -> None:
    from cloudinit_cernvm import private_files

    private_files.write_json(os.path.join(cernvm_dir, RECORD_NAME), record)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# --- running -------------------------------------------------------------------


def shell() -> str:
    """bash, which HEPiX sourced the scripts with; sh where there is none."""
    for path in SHELLS:
        if os.access(path, os.X_OK):
            return path
    return SHELLS[-1]


def run_script(phase: str, cernvm_dir: str, record: dict,
               base_env: Mapping[str, str]) -> tuple[dict, str | None, str]:
    """Run the instance's copy of ``phase`` (``prolog.sh``, ``epilog.sh``).

    Returns its record, the one-line problem (None: exit status 0) and its
    output. The copy and the context directory were written at the prolog.
    """
    from cloudinit_cernvm import bounded_process, safefile

    copy = os.path.join(cernvm_dir, COPY_NAME)
    script = os.path.join(copy, phase)
    context_dir = record["context_dir"]
    timeout = float(record["timeout_s"])
    try:
        context = safefile.read_regular(os.path.join(copy, CONTEXT_SH), MAX_TOTAL)
    except OSError:
        context = b""
    variables = context_variables({CONTEXT_SH: context} if context else {})
    env = environment(base_env, variables, context_dir)
    argv = [shell(), "-c", '. "$0" start', script]
    what = f"HEPiX {phase}"
    log_path = os.path.join(cernvm_dir, f"hepix-{phase.split('.')[0]}.log")
    if not os.path.isdir(context_dir):  # removed since the prolog: as it was
        _write_files(context_dir, _copied(copy), skip=SCRIPTS)
    result = bounded_process.run_bounded(argv, env, timeout, log_path, cwd=context_dir)
    entry = {
        "started": _now(),
        **result.record(),
        "cwd": context_dir,
        "variables": sorted(variables),
        "output": log_path,
        "uid": os.geteuid(),
    }
    problem = result.problem(what, timeout)
    if problem:
        problem += f" (the site contextualization; its output is in {log_path})"
    return entry, problem, result.output


def _copied(copy: str) -> dict[str, bytes]:
    from cloudinit_cernvm import safefile

    files = {}
    for name in sorted(os.listdir(copy)):
        try:
            files[name] = safefile.read_regular(os.path.join(copy, name), MAX_TOTAL)
        except OSError:
            continue
    return files


def begin(cernvm_dir: str, seed_dir: str, scripts_dir: str, ds_cfg: Mapping | None,
          base_env: Mapping[str, str]) -> dict | None:
    """At the new instance's first ``__begin__``: the prolog, and the epilog's launcher.

    Nothing when the seed holds no site context or this instance's record
    exists (a later consume: vendor-data). Returns the record written.
    """
    from cloudinit_cernvm import bounded_process, private_files, redact

    if read_record(cernvm_dir) is not None:
        return None
    try:
        files = site_files(seed_dir)
    except HepixError as err:
        LOG.warning("CernVM: the HEPiX site context not run: %s", redact.redact_text(str(err)))
        return None
    if files is None:
        return None
    settings, problems = settings_from(ds_cfg)
    for problem in problems:
        LOG.warning("CernVM: %s", problem)
    private_files.private_dir(cernvm_dir)
    record: dict = {
        "seed": os.path.join(seed_dir, SEED_SUBDIR),
        "context_dir": settings.context_dir,
        "timeout_s": settings.timeout,
        "files": sorted(files),
        "prolog": None,
        "epilog": None,
        "launcher": None,
    }
    try:
        _write_files(os.path.join(cernvm_dir, COPY_NAME), files)
        _write_files(settings.context_dir, files, skip=SCRIPTS)
    except OSError as err:
        LOG.warning("CernVM: the HEPiX site context not run: cannot write %s: %s",
                    err.filename or settings.context_dir, err.strerror or err)
        return None
    if EPILOG in files:
        launcher = os.path.join(scripts_dir, LAUNCHER_NAME)
        try:
            os.makedirs(scripts_dir, exist_ok=True)  # cloud-init's; it makes it too
            private_files.write_private(launcher, launcher_text(cernvm_dir).encode(), mode=0o700)
            record["launcher"] = launcher
        except OSError as err:
            LOG.warning("CernVM: HEPiX epilog.sh will not run: cannot write %s: %s",
                        launcher, err.strerror or err)
    # recorded before it runs: a prolog that takes cloud-init down runs once only
    if PROLOG in files:
        record["prolog"] = {"started": _now(), "exit_status": None}
    _write_record(cernvm_dir, record)
    if PROLOG not in files:
        LOG.info("CernVM: HEPiX site context without prolog.sh (%d files)", len(files))
        return record
    LOG.info("CernVM: running the HEPiX prolog.sh in %s (at most %g s)",
             settings.context_dir, settings.timeout)
    entry, problem, output = run_script(PROLOG, cernvm_dir, record, base_env)
    bounded_process.log_output("HEPiX prolog.sh", output)
    record["prolog"] = entry
    if problem:
        LOG.warning("CernVM: %s", problem)
    else:
        LOG.info("CernVM: HEPiX prolog.sh exited with status 0 after %.1f s", entry["duration_s"])
    _write_record(cernvm_dir, record)
    return record


def epilog(cernvm_dir: str, base_env: Mapping[str, str], out=None) -> int:
    """The launcher's work, in the final stage: epilog.sh once; always 0.

    Its output and one line of outcome go to ``out`` (stdout: cloud-init's
    final stage keeps it in ``cloud-init-output.log``).
    """
    from cloudinit_cernvm import redact

    out = out or sys.stdout

    def say(line: str) -> None:
        print(f"CernVM: {line}", file=out, flush=True)

    record = read_record(cernvm_dir)
    if record is None:
        say(f"HEPiX epilog.sh not run: no record {os.path.join(cernvm_dir, RECORD_NAME)}")
        return 0
    if record.get("epilog"):
        say("HEPiX epilog.sh ran already for this instance; not run again")
        return 0
    if not os.path.isfile(os.path.join(cernvm_dir, COPY_NAME, EPILOG)):
        say("HEPiX epilog.sh not run: the site context has none")
        return 0
    record["epilog"] = {"started": _now(), "exit_status": None}
    _write_record(cernvm_dir, record)
    try:
        entry, problem, output = run_script(EPILOG, cernvm_dir, record, base_env)
    except (OSError, KeyError, ValueError, TypeError) as err:
        entry = {**record["epilog"], "error": str(err), "duration_s": 0.0}
        problem, output = f"HEPiX epilog.sh not run: {err}", ""
    lines = output.splitlines()
    for line in lines[:500]:
        say(f"HEPiX epilog.sh: {redact.redact_text(line)}")
    record["epilog"] = entry
    _write_record(cernvm_dir, record)
    if problem:
        say(f"WARNING: {problem}")
    else:
        say(f"HEPiX epilog.sh exited with status 0 after {entry['duration_s']:.1f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m cloudinit_cernvm.hepix epilog CERNVM_DIR`` (the launcher)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "epilog" or not os.path.isabs(args[1]):
        print("usage: python -m cloudinit_cernvm.hepix epilog CERNVM_DIR", file=sys.stderr)
        return 2
    try:
        return epilog(args[1], os.environ)
    except OSError as err:  # the record cannot be written: still not the boot's end
        print(f"CernVM: HEPiX epilog.sh: {err.strerror or err}", file=sys.stdout)
        return 0


if __name__ == "__main__":
    sys.exit(main())
