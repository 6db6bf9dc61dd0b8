"""Hand the amiconfig parts of the user-data to amiconfig, once, locally.

CernVM's own boot service (``amiconfig.sh user``) fetched the user-data
again from the network, ran the ``sh.before`` script, ran amiconfig with
``AMICONFIG_LOCAL_USER_DATA`` and ``AMICONFIG_CONTEXT_URL`` exported, and
touched ``/var/lib/amiconfig/user.done`` so that it never ran again. The
part-handler does the same from what cloud-init already has: the collected
payload is written to a private file, the instance's metadata to a local
directory laid out like the EC2 metadata tree (so that no plugin goes to
the network), and amiconfig runs with those two variables set for its own
process only, bounded in time.

Plain functions, standard library only (Jinja2 is imported when a part is a
template): the handler in ``handlers.py`` is a thin shell over them, and the
unit tests call them without cloud-init.
"""

from __future__ import annotations

import json
import logging
import os
import select
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping

from cloudinit_cernvm import redact, safefile

LOG = logging.getLogger(__name__)

DEFAULT_COMMAND = "/usr/sbin/amiconfig"
DEFAULT_TIMEOUT = 600.0
#: what CernVM's ``amiconfig.sh`` touches after a run, and checks before one
DONE_FILE = "/var/lib/amiconfig/user.done"
#: the metadata API version amiconfig.sh and amiconfig use
EC2_API_VERSION = "2007-12-15"
TEMPLATE_HEADER = "## template: jinja"

# Names inside the instance's ``cernvm`` directory (docs/internals.rst).
PAYLOAD_NAME = "amiconfig-user-data"
RECORD_NAME = "amiconfig.json"
OUTPUT_NAME = "amiconfig.log"
METADATA_NAME = "amiconfig-metadata"
SCRIPTS_NAME = "scripts-before"

#: seconds between SIGTERM and SIGKILL for a process group past its limit
KILL_GRACE = 5.0
#: at most this many lines of a command's output are copied into the log
MAX_LOGGED_LINES = 500


class TemplateError(ValueError):
    """A ``## template: jinja`` part that cannot be rendered (one line)."""


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


# --- templates ---------------------------------------------------------------


def is_template(text: str) -> bool:
    """Whether a part starts with cloud-init's ``## template: jinja`` line."""
    first = text.lstrip("\ufeff").split("\n", 1)[0].strip().lower()
    return first.replace(" ", "") == TEMPLATE_HEADER.replace(" ", "")


def template_variables(instance_data: Mapping, extra: Mapping | None = None) -> dict:
    """The names a template sees, as cloud-init gives them to its own templates.

    The whole instance data (``v1``, ``ds``...), ``v1``'s keys at the top
    level, ``_`` aliases for ``-`` in key names, then ``extra`` (for example
    ``hostname`` and ``provider``).
    """
    variables: dict = dict(instance_data)
    v1 = instance_data.get("v1")
    if isinstance(v1, Mapping):
        variables.update(v1)
    for key in list(variables):
        if isinstance(key, str) and "-" in key:
            variables.setdefault(key.replace("-", "_"), variables[key])
    if extra:
        variables.update({k: v for k, v in extra.items() if v is not None})
    return variables


#: most characters a rendered template may have: the user-data cap of the
#: clouds that take the most (EC2 unpacked, context.sh)
MAX_TEMPLATE_OUTPUT = 1024 * 1024
#: seconds a template may take to render (a real one takes milliseconds)
TEMPLATE_TIMEOUT = 5.0
#: bytes of address space the rendering process may add to cloud-init's
TEMPLATE_MEMORY = 512 * 1024 * 1024
#: bits an integer computed by a template may have (10**10**10 has 3e10)
MAX_TEMPLATE_INT_BITS = 1024 * 1024


def render_template(text: str, variables: Mapping, timeout: float = TEMPLATE_TIMEOUT,
                    limit: int = MAX_TEMPLATE_OUTPUT) -> str:
    """Render a ``## template: jinja`` part; the header line is dropped.

    An undefined name is an error rather than an empty string: a plugin
    configured with a blank host name is worse than a warning and the part
    as written. Raises :class:`TemplateError` with a one-line reason.

    A template is code from the user-data, so it is rendered bounded: in
    Jinja's sandbox (no ``__class__`` and other internals), refusing ``*``
    and ``**`` whose result would be huge, at most ``limit`` characters of
    output, and in a child process with at most ``timeout`` seconds and
    :data:`TEMPLATE_MEMORY` more memory, killed past them. ``{{ "x"*10**9 }}``
    took a minute and 4.8 GB in cloud-init's own process before.
    """
    body = text.lstrip("\ufeff").split("\n", 1)[1] if "\n" in text else ""
    return _render_in_child(body, variables, timeout, limit)


def _render_in_child(body: str, variables: Mapping, timeout: float, limit: int) -> str:
    """Fork, render there, read the result back through a pipe; bounded in time."""
    reader, writer = os.pipe()
    try:
        pid = os.fork()
    except OSError as err:
        os.close(reader)
        os.close(writer)
        raise TemplateError(f"cannot start the renderer: {err.strerror}") from None
    if pid == 0:  # the child: never returns into the caller's code
        status = 0
        try:
            os.close(reader)
            _limit_child(timeout)
            try:
                reply = b"0" + _render_bounded(body, variables, limit).encode(
                    "utf-8", "surrogateescape")
            except TemplateError as err:
                reply = b"1" + str(err).encode("utf-8", "replace")
            except MemoryError:
                reply = b"1" + f"needs more than {TEMPLATE_MEMORY >> 20} MiB".encode()
            view = memoryview(reply)
            while view:
                view = view[os.write(writer, view):]
        except BaseException:
            status = 1
        finally:
            os._exit(status)
    os.close(writer)
    try:
        reply, finished = _read_reply(reader, timeout, 4 * limit + 4096)
    finally:
        os.close(reader)
    if not finished:
        _kill_child(pid)
        raise TemplateError(f"rendering took more than {timeout:g} s; stopped")
    _, wait_status = os.waitpid(pid, 0)
    if not reply:
        if os.WIFSIGNALED(wait_status):
            why = f"killed by signal {_signal_name(os.WTERMSIG(wait_status))}"
        else:
            why = f"exit status {os.WEXITSTATUS(wait_status)}"
        raise TemplateError(f"the renderer ended without a result ({why})")
    if reply[:1] == b"1":
        raise TemplateError(reply[1:].decode("utf-8", "replace"))
    return reply[1:].decode("utf-8", "surrogateescape")


def _limit_child(timeout: float) -> None:
    """Bound the rendering process: CPU seconds, and memory beyond what it has now."""
    import math
    import resource

    cpu = math.ceil(timeout) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    try:
        with open("/proc/self/statm", "rb") as f:
            in_use = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return
    cap = in_use + TEMPLATE_MEMORY
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def _read_reply(fd: int, timeout: float, most: int) -> tuple[bytes, bool]:
    """What the child writes until it closes the pipe; False when time ran out first."""
    deadline = time.monotonic() + timeout
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    chunks: list[bytes] = []
    size = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not poller.poll(left * 1000):
            return b"".join(chunks), False
        chunk = os.read(fd, 1024 * 1024)
        if not chunk:
            return b"".join(chunks), True
        size += len(chunk)
        if size > most:  # more than the child can send: not our child's reply
            return b"", False
        chunks.append(chunk)


def _kill_child(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)


def _render_bounded(body: str, variables: Mapping, limit: int) -> str:
    """Render ``body`` in the sandbox, at most ``limit`` characters (in the child)."""
    try:
        import jinja2
        from jinja2.sandbox import SandboxedEnvironment
    except ImportError:
        raise TemplateError("Jinja2 is not installed") from None

    class BoundedEnvironment(SandboxedEnvironment):
        """The sandbox, also refusing ``*`` and ``**`` with a huge result."""

        intercepted_binops = frozenset({"*", "**"})

        def call_binop(self, context, operator, left, right):
            problem = _huge_binop(operator, left, right, limit)
            if problem:
                raise jinja2.exceptions.SecurityError(problem)
            return super().call_binop(context, operator, left, right)

    env = BoundedEnvironment(
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
    )
    try:
        out: list[str] = []
        size = 0
        for chunk in env.from_string(body).generate(**variables):
            size += len(chunk)
            if size > limit:
                raise TemplateError(f"renders to more than {limit} characters; stopped")
            out.append(chunk)
        return "".join(out)
    except TemplateError:
        raise
    except jinja2.TemplateSyntaxError as err:
        raise TemplateError(f"line {err.lineno + 1}: {err.message}") from None
    except jinja2.TemplateError as err:
        raise TemplateError(str(err).splitlines()[0] if str(err) else type(err).__name__) from None
    except MemoryError:
        raise
    except Exception as err:  # a filter or test failing on the given data
        raise TemplateError(f"{type(err).__name__}: {err}") from None


def _huge_binop(operator: str, left: object, right: object, limit: int) -> str | None:
    """Why ``left operator right`` would be too big to compute, or None."""
    sized = (str, bytes, list, tuple)
    if operator == "*":
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, sized) and isinstance(times, int):
                if len(seq) * times > limit:
                    return f"'*' would make {len(seq) * times} items (at most {limit})"
                return None
        if isinstance(left, int) and isinstance(right, int):
            bits = left.bit_length() + right.bit_length()
            if bits > MAX_TEMPLATE_INT_BITS:
                return f"'*' would make a number of {bits} bits"
    elif operator == "**" and isinstance(left, int) and isinstance(right, int):
        if abs(left) > 1 and right > 0:
            bits = (abs(left).bit_length() - 1) * right
            if bits > MAX_TEMPLATE_INT_BITS:
                return f"'**' would make a number of more than {bits} bits"
    return None


def build_payload(texts: list[str]) -> bytes:
    """The parts one after the other, each ending with a newline, as UTF-8."""
    out = []
    for text in texts:
        out.append(text if text.endswith("\n") or not text else text + "\n")
    return "".join(out).encode("utf-8")


def load_instance_data(run_dir: str) -> dict:
    """cloud-init's instance data (the sensitive copy when readable), or {}."""
    for name in ("instance-data-sensitive.json", "instance-data.json"):
        try:
            with open(os.path.join(run_dir, name), encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            return data
    return {}


# --- private files -----------------------------------------------------------


def private_dir(path: str) -> str:
    """Create ``path`` and missing parents 0700 (the leaf made 0700 anyway).

    The leaf is this project's own directory: a symbolic link found there
    (put in place to make the records land elsewhere) is removed and a real
    directory made, never followed; the mode is set through a descriptor
    opened without following links. Existing parents are cloud-init's
    (``/var/lib/cloud/instance`` is itself a link) and are used as they are.
    """
    leaf = os.path.abspath(path)
    if os.path.islink(leaf):
        LOG.info("CernVM: %s was a symbolic link; replaced by a directory", leaf)
        os.unlink(leaf)
    missing = []
    here = leaf
    while not os.path.isdir(here):
        missing.append(here)
        here = os.path.dirname(here)
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            pass
    fd = os.open(leaf, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.fchmod(fd, 0o700)
    finally:
        os.close(fd)
    return path


def write_private(path: str, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` atomically with ``mode``, never readable by others meanwhile."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_json(path: str, record: Mapping) -> None:
    """A record for ``cernvm-context show``: JSON, 0600."""
    write_private(path, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())


class InstanceMeta:
    """What amiconfig plugins may ask the metadata service for.

    ``meta_data`` is the provider's meta-data as the datasource read it;
    ``local_ipv4`` the machine's address, for a provider that gives none.
    """

    __slots__ = ("availability_zone", "instance_id", "local_hostname", "local_ipv4",
                 "meta_data", "public_keys")

    def __init__(self, instance_id: str | None = None, local_hostname: str | None = None,
                 public_keys: list[str] | None = None,
                 availability_zone: str | None = None,
                 meta_data: Mapping | None = None,
                 local_ipv4: str | None = None) -> None:
        self.instance_id = instance_id
        self.local_hostname = local_hostname
        self.public_keys = [] if public_keys is None else public_keys
        self.availability_zone = availability_zone
        self.meta_data = meta_data if isinstance(meta_data, Mapping) else {}
        self.local_ipv4 = local_ipv4


def write_metadata_tree(base: str, meta: InstanceMeta, user_data: bytes) -> str:
    """Lay out ``base/2007-12-15`` like the EC2 metadata tree; return its URL.

    amiconfig reads ``<url>/meta-data/<key>`` and ``<url>/user-data``; with a
    ``file:`` URL it never opens a socket. Every key its getters read is
    written (``amiconfig_metadata.tree_values``: the provider's value, the
    machine's, or a documented default), and the public keys.
    """
    from cloudinit_cernvm import amiconfig_metadata

    root = os.path.join(private_dir(base), EC2_API_VERSION)
    private_dir(os.path.join(root, "meta-data"))
    values = amiconfig_metadata.tree_values(meta.meta_data, meta.instance_id,
                                            meta.local_hostname, meta.local_ipv4)
    files = {f"meta-data/{key}": value for key, value in values.items()}
    if meta.availability_zone:
        files["meta-data/placement/availability-zone"] = meta.availability_zone
    for index, key in enumerate(meta.public_keys):
        files[f"meta-data/public-keys/{index}/openssh-key"] = key.strip() + "\n"
    for name, text in files.items():
        path = os.path.join(root, name)
        private_dir(os.path.dirname(path))
        write_private(path, text.encode("utf-8"))
    write_private(os.path.join(root, "user-data"), user_data)
    return "file:" + root


def amiconfig_environment(base: Mapping[str, str], payload: str, context_url: str) -> dict:
    """The environment of amiconfig's process: cloud-init's plus the two variables."""
    env = {k: v for k, v in base.items() if not k.startswith("AMICONFIG_")}
    env["AMICONFIG_LOCAL_USER_DATA"] = payload
    env["AMICONFIG_CONTEXT_URL"] = context_url
    return env


# --- running -----------------------------------------------------------------


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
            return f"{what} was killed by signal {_signal_name(self.signal)}"
        if self.status:
            return f"{what} exited with status {self.status}"
        return None


def _signal_name(number: int) -> str:
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
    fd = safefile.create_private(output_path)  # never through a link left there
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


def mark_done(path: str) -> None:
    """Touch the file CernVM's ``amiconfig.sh user`` checks, as it does."""
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    # a link in its place is an error, not a file touched elsewhere
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                 0o644)
    os.close(fd)


# --- one run -------------------------------------------------------------------


class Script:
    """A ``sh.before`` script: run right before amiconfig."""

    __slots__ = ("name", "text")

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.text = text


def prepare_parts(
    parts: list[tuple[str, str]], variables: Mapping | None
) -> tuple[list[str], list[str]]:
    """Render the template parts; return the texts in order and the warnings.

    ``parts`` are ``(name, text)``. A part that cannot be rendered is kept as
    written (amiconfig skips the header line, which is a comment) and named
    in a warning, so that one bad template does not lose the other sections.
    """
    texts: list[str] = []
    warnings: list[str] = []
    for name, text in parts:
        if is_template(text):
            try:
                text = render_template(text, variables or {})
            except TemplateError as err:
                warnings.append(
                    f"amiconfig part {redact.redact_text(name)}: template not rendered"
                    f" ({redact.redact_text(str(err))}); kept as written"
                )
        texts.append(text)
    return texts, warnings


def _safe_name(name: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return keep.strip(".") or "script"


def run_before_scripts(
    scripts: list[Script], directory: str, env: Mapping[str, str], timeout: float
) -> tuple[list[dict], list[str]]:
    """Run the ``sh.before`` scripts in order, each bounded; records and warnings."""
    records: list[dict] = []
    warnings: list[str] = []
    if not scripts:
        return records, warnings
    private_dir(directory)
    for index, script in enumerate(scripts):
        path = os.path.join(directory, f"{index:02d}-{_safe_name(script.name)}")
        write_private(path, script.text.encode("utf-8"), mode=0o700)
        what = f"sh.before script {script.name}"
        LOG.info("CernVM: running %s", what)
        result = run_bounded([path], env, timeout, path + ".log")
        log_output(what, result.output)
        problem = result.problem(what, timeout)
        if problem:
            warnings.append(problem)
        else:
            LOG.info("CernVM: %s exited with status 0 after %.1f s", what, result.seconds)
        records.append(_result_record(result, path))
    return records, warnings


def _result_record(result: RunResult, path: str | None = None) -> dict:
    record = {
        "command": result.argv,
        "exit_status": result.status,
        "signal": _signal_name(result.signal) if result.signal is not None else None,
        "timed_out": result.timed_out,
        "error": result.error,
        "duration_s": result.seconds,
    }
    if path is not None:
        record["path"] = path
    return record


def already_done(cernvm_dir: str) -> bool:
    """Whether this instance's record says amiconfig already ran to its end."""
    record = read_record(cernvm_dir)
    return bool(record and record.get("done_marker"))


def read_record(cernvm_dir: str) -> dict | None:
    """This instance's ``amiconfig.json``, or None when there is none (or it is bad)."""
    return safefile.read_json_record(os.path.join(cernvm_dir, RECORD_NAME))


def done_before(settings: Settings) -> str | None:
    """Why amiconfig must not run: the done file exists already (None: it may run).

    ``amiconfig.sh user`` touches it after a run and skips when it exists:
    the image's own service ran first, or the image was saved after a run.
    """
    if not os.path.lexists(settings.done_file):
        return None
    return (f"{settings.done_file} exists: amiconfig already contextualized this machine"
            " (CernVM's amiconfig service, or an image saved after a run); not run again,"
            " as amiconfig.sh does")


def _skip(cernvm_dir: str, record: dict, reason: str, has_input: bool) -> dict:
    record["skipped"] = reason
    record["warnings"] = []
    if has_input:
        problem = (f"{reason}: the user-data's amiconfig sections and sh.before scripts"
                   " were not applied")
        LOG.warning("CernVM: %s", problem)
        record["warnings"].append(problem)
    else:
        LOG.info("CernVM: %s", reason)
    write_json(os.path.join(cernvm_dir, RECORD_NAME), record)
    return record


def installed(argv: list[str]) -> bool:
    """Whether the command's program exists (a path, or a name on PATH)."""
    path = argv[0]
    return (os.path.isabs(path) and os.path.exists(path)) or shutil.which(path) is not None


def skip_not_installed(cernvm_dir: str, settings: Settings, instance_id: str | None) -> dict:
    """The record of a machine without amiconfig whose user-data asks nothing of it.

    Not a CernVM image: nothing is written but the record, so that such a
    boot costs no more than before.
    """
    private_dir(cernvm_dir)
    reason = f"{settings.command[0]} is not installed and no part asks for it"
    record = {"command": settings.command, "parts": 0, "instance_id": instance_id,
              "exit_status": None, "done_marker": None, "skipped": reason, "warnings": []}
    LOG.info("CernVM: amiconfig not run: %s", reason)
    write_json(os.path.join(cernvm_dir, RECORD_NAME), record)
    return record


def plugin_problems(result: RunResult, payload: bytes,
                    settings: Settings) -> tuple[dict, list[str]]:
    """amiconfig's per-plugin outcome from its output, and one line per failed plugin."""
    from cloudinit_cernvm import amiconfig_input as ami

    text = payload.decode("utf-8", "replace")
    sections = ami.read_sections(text)
    config_path = ami.config_file(settings.command)
    try:
        config = safefile.read_regular(config_path, 1024 * 1024).decode("utf-8", "replace")
    except OSError:
        config = None
    enabled = ami.enabled_plugins(ami.default_plugins(config), sections)
    outcome = ami.read_output(result.output)
    record = outcome.record(enabled)
    record["config"] = config_path if config is not None else None
    problems = []
    for failure in record["failed"]:
        message = redact.redact_text(failure["message"])
        if failure["plugin"]:
            line = f"amiconfig plugin {failure['plugin']} failed: {message}"
            if failure["known_bug"]:
                line += (" (the cernvm plugin's known bug: it fails at its end on every run;"
                         " see the README)")
        else:
            line = (f"an amiconfig plugin failed (one of {', '.join(failure['candidates'])}):"
                    f" {message}")
        problems.append(line)
    crash = ami.crashing_section(sections)
    if crash and result.status:
        problems.append(f"amiconfig exited with status {result.status}: a section named"
                        f" [{crash}] crashes amiconfig (write it [amiconfig])")
    record["crash_section"] = crash
    return record, problems


def log_amiconfig_output(output: str) -> None:
    """Copy amiconfig's output into cloud-init's log, without its chatter.

    amiconfig prints an empty line per plugin that ran and a "Plugin
    disabled" line per installed plugin that is not enabled: dozens of
    lines that say nothing; they stay in ``amiconfig.log``.
    """
    from cloudinit_cernvm import amiconfig_input

    log_output("amiconfig", "\n".join(
        line for line in output.splitlines() if not amiconfig_input.is_chatter(line)))


def contextualize(
    cernvm_dir: str,
    parts: list[str],
    scripts: list[Script],
    settings: Settings,
    meta: InstanceMeta,
    base_env: Mapping[str, str],
    warnings: list[str] | None = None,
    part_count: int | None = None,
) -> dict:
    """Run the ``sh.before`` scripts, then amiconfig once; return the record.

    ``parts`` are the payload's texts; ``part_count`` how many of them are
    the user's amiconfig text (the others are µCernVM blocks, which the
    original amiconfig read too); by default all.

    amiconfig runs whether or not there are parts, as ``amiconfig.sh user``
    did (the default plugins, ``rootsshkeys``, still run), unless the done
    file exists already: then nothing runs and the record says why. Writes
    the payload, the metadata tree, amiconfig's output and the record
    ``amiconfig.json`` into ``cernvm_dir`` (0700, files 0600); marks the run
    done in ``settings.done_file`` when amiconfig ran to its end, whatever its
    exit status, as ``amiconfig.sh`` does. Each problem is logged as one
    warning and listed in the record; nothing here raises for a fault of
    amiconfig or of the scripts.
    """
    warnings = list(warnings or [])
    private_dir(cernvm_dir)
    payload_path = os.path.join(cernvm_dir, PAYLOAD_NAME)
    part_count = len(parts) if part_count is None else part_count
    record: dict = {
        "command": settings.command,
        "timeout_s": settings.timeout,
        "parts": part_count,
        "payload": payload_path,
        "instance_id": meta.instance_id,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "exit_status": None,
        "done_marker": None,
        "skipped": None,
    }
    reason = done_before(settings)
    if reason:
        return _skip(cernvm_dir, record, reason, bool(part_count or scripts))
    payload = build_payload(parts)
    write_private(payload_path, payload)
    url = write_metadata_tree(os.path.join(cernvm_dir, METADATA_NAME), meta, payload)
    env = amiconfig_environment(base_env, payload_path, url)
    record["context_url"] = url
    for problem in warnings:
        LOG.warning("CernVM: %s", problem)
    before, script_warnings = run_before_scripts(
        scripts, os.path.join(cernvm_dir, SCRIPTS_NAME), env, settings.timeout
    )
    record["before_scripts"] = before
    for problem in script_warnings:
        LOG.warning("CernVM: %s", problem)
    warnings += script_warnings
    if not part_count and not installed(settings.command):
        # no amiconfig on this machine and nothing asked of it: not a CernVM image
        record["skipped"] = f"{settings.command[0]} is not installed and no part asks for it"
        LOG.info("CernVM: amiconfig not run: %s", record["skipped"])
        record["warnings"] = warnings
        write_json(os.path.join(cernvm_dir, RECORD_NAME), record)
        return record
    LOG.info("CernVM: running amiconfig (%s) on %d part(s) from %s",
             " ".join(settings.command), part_count, payload_path)
    result = run_bounded(settings.command, env, settings.timeout,
                         os.path.join(cernvm_dir, OUTPUT_NAME))
    log_amiconfig_output(result.output)
    record.update(_result_record(result))
    record["command"] = settings.command
    record["output"] = os.path.join(cernvm_dir, OUTPUT_NAME)
    problems: list[str] = []
    if result.completed:
        record["plugins"], problems = plugin_problems(result, payload, settings)
    if not problems or result.status not in (0, 1):
        problem = result.problem("amiconfig", settings.timeout)
        if problem:
            problems.append(problem + f"; its input is kept in {payload_path}")
    for problem in problems:
        LOG.warning("CernVM: %s", problem)
    warnings += problems
    if not problems:
        LOG.info("CernVM: amiconfig exited with status 0 after %.1f s", result.seconds)
    if result.completed:
        try:
            mark_done(settings.done_file)
            record["done_marker"] = settings.done_file
        except OSError as err:
            problem = f"cannot mark amiconfig done in {settings.done_file}: {err.strerror}"
            LOG.warning("CernVM: %s", problem)
            warnings.append(problem)
    record["warnings"] = warnings
    write_json(os.path.join(cernvm_dir, RECORD_NAME), record)
    return record
