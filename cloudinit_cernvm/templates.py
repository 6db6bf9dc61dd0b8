"""Render a ``## template: jinja`` part, bounded, in a child process.

A template is code from the user-data: it is rendered in Jinja's sandbox,
refusing huge ``*`` and ``**``, at most so many characters, in a forked
child limited in CPU time and memory and killed past its time. Also the
names a template sees, as cloud-init gives them to its own templates, and
cloud-init's instance data they come from. Apart from the amiconfig run:
only a part that is a template needs any of it.

Standard library only; Jinja2 is imported in the child, when a template is
rendered.
"""

from __future__ import annotations

import json
import os
import select
import signal
import time
from collections.abc import Mapping

from cloudinit_cernvm.bounded_process import signal_name

TEMPLATE_HEADER = "## template: jinja"


class TemplateError(ValueError):
    """A ``## template: jinja`` part that cannot be rendered (one line)."""


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
            why = f"killed by signal {signal_name(os.WTERMSIG(wait_status))}"
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
