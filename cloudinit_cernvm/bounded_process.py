"""Run a command bounded in time, its whole process group killed past the limit.

The amiconfig run, its ``sh.before`` scripts and the HEPiX site context's
scripts all run this way: in their own session, output to a private file
(never a pipe a daemon could hold open), waited for through a pidfd,
SIGTERM then SIGKILL to the group past the limit; and their output copied,
redacted and bounded, into cloud-init's log.

Standard library only.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import subprocess
import time
from collections.abc import Mapping

from cloudinit_cernvm import private_files, redact

LOG = logging.getLogger(__name__)

#: seconds between SIGTERM and SIGKILL for a process group past its limit
KILL_GRACE = 5.0
#: at most this many lines of a command's output are copied into the log
MAX_LOGGED_LINES = 500


class RunResult:
    """How a bounded command ended."""

    __slots__ = ("argv", "error", "output", "seconds", "signal", "status", "timed_out")

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.status: int | None = None  # exit status when it exited
        self.signal: int | None = None  # the signal that ended it, when one did
        self.timed_out = False
        self.error: str | None = None  # it could not be started
        self.seconds = 0.0
        self.output = ""

    @property
    def completed(self) -> bool:
        """It ran to its own end (any exit status), not killed nor missing."""
        return self.status is not None and not self.timed_out

    def problem(self, what: str, timeout: float) -> str | None:
        """One line saying what went wrong, or None for exit status 0."""
        if self.error is not None:
            return f"{what} not run: {self.error}"
        if self.timed_out:
            return f"{what} ran past its limit of {timeout:g} s and was killed"
        if self.signal is not None:
            return f"{what} was killed by signal {signal_name(self.signal)}"
        if self.status:
            return f"{what} exited with status {self.status}"
        return None

    def record(self) -> dict:
        """How it ended, as the records (``amiconfig.json``, ``hepix.json``) say it."""
        return {
            "command": self.argv,
            "exit_status": self.status,
            "signal": signal_name(self.signal) if self.signal is not None else None,
            "timed_out": self.timed_out,
            "error": self.error,
            "duration_s": self.seconds,
        }


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def run_bounded(
    argv: list[str],
    env: Mapping[str, str],
    timeout: float,
    output_path: str,
    grace: float = KILL_GRACE,
    cwd: str = "/",
) -> RunResult:
    """Run ``argv`` in its own process group, at most ``timeout`` seconds.

    Output (stdout and stderr together) goes to ``output_path`` (0600), not to
    a pipe: a daemon a plugin starts may keep a pipe open forever, a file it
    may. Past the limit the whole group gets SIGTERM, then SIGKILL after
    ``grace`` seconds, so that no child of it runs on unseen. It runs in
    ``cwd`` (``/``: nothing of cloud-init's working directory).
    """
    result = RunResult(argv=list(argv))
    started = time.monotonic()
    fd = private_files.create_private(output_path)  # never through a link left there
    try:
        try:
            proc = subprocess.Popen(
                argv,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=fd,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as err:
            result.error = f"{argv[0]}: {err.strerror or err}"
            return result
    finally:
        os.close(fd)
    code = _wait(proc, timeout)
    if code is None:
        result.timed_out = True
        _kill_group(proc, grace)
        code = proc.returncode
    result.seconds = round(time.monotonic() - started, 3)
    if code is not None and code < 0:
        result.signal = -code
    elif not result.timed_out:
        result.status = code
    result.output = _read_text(output_path)
    return result


def _wait(proc: subprocess.Popen, timeout: float) -> int | None:
    """``proc``'s exit status, or None once ``timeout`` seconds have passed.

    Wakes as soon as the process ends, through a pidfd (Linux 5.3, Python
    3.9). ``Popen.wait(timeout)`` polls instead, at up to 50 ms intervals:
    every amiconfig run would end the boot up to 50 ms late.
    """
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # an older kernel: poll
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        ended = poller.poll(max(timeout, 0) * 1000)
    finally:
        os.close(pidfd)
    return proc.wait() if ended else proc.poll()


def _kill_group(proc: subprocess.Popen, grace: float) -> None:
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=wait)
            if sig == signal.SIGTERM:
                # the leader is gone; its children in the group go too
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            return
        except subprocess.TimeoutExpired:
            continue


def _read_text(path: str, limit: int = 1024 * 1024) -> str:
    """A command's output file, its first ``limit`` bytes (never through a link)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return ""
    try:
        return os.read(fd, limit).decode("utf-8", "replace")
    except OSError:
        return ""
    finally:
        os.close(fd)


def log_output(what: str, output: str) -> None:
    """Copy a command's output into cloud-init's log, a bounded number of lines."""
    lines = output.splitlines()
    for line in lines[:MAX_LOGGED_LINES]:  # a plugin may echo its configuration
        LOG.info("CernVM: %s: %s", what, redact.redact_text(line))
    if len(lines) > MAX_LOGGED_LINES:
        LOG.info("CernVM: %s: ... %d more lines", what, len(lines) - MAX_LOGGED_LINES)

