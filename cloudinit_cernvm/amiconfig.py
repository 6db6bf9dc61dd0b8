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

This module is the run: the payload, the ``sh.before`` scripts, amiconfig
once, the done marker, the record ``amiconfig.json`` with why a run was
skipped and which plugin failed. What it uses has its own room: the
settings (``amiconfig_settings.py``), templates (``templates.py``), the
metadata tree (``amiconfig_metadata.py``), bounded processes
(``bounded_process.py``) and private files (``private_files.py``).

Plain functions, standard library only (Jinja2 is imported when a part is a
template): the handler in ``handlers.py`` is a thin shell over them, and the
unit tests call them without cloud-init.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from cloudinit_cernvm import redact, safefile
from cloudinit_cernvm.private_files import private_dir, write_json, write_private

if TYPE_CHECKING:
    from cloudinit_cernvm.amiconfig_metadata import InstanceMeta
    from cloudinit_cernvm.amiconfig_settings import Settings
    from cloudinit_cernvm.bounded_process import RunResult

# The rooms a run needs (templates, the metadata tree, bounded processes) are
# imported where the run needs them: a later pass of the instance, or a
# machine without amiconfig, stops before and loads none of them.

LOG = logging.getLogger(__name__)

# Names inside the instance's ``cernvm`` directory (docs/internals.rst).
PAYLOAD_NAME = "amiconfig-user-data"
RECORD_NAME = "amiconfig.json"
OUTPUT_NAME = "amiconfig.log"
METADATA_NAME = "amiconfig-metadata"
SCRIPTS_NAME = "scripts-before"


def build_payload(texts: list[str]) -> bytes:
    """The parts one after the other, each ending with a newline, as UTF-8."""
    out = []
    for text in texts:
        out.append(text if text.endswith("\n") or not text else text + "\n")
    return "".join(out).encode("utf-8")


def amiconfig_environment(base: Mapping[str, str], payload: str, context_url: str) -> dict:
    """The environment of amiconfig's process: cloud-init's plus the two variables."""
    env = {k: v for k, v in base.items() if not k.startswith("AMICONFIG_")}
    env["AMICONFIG_LOCAL_USER_DATA"] = payload
    env["AMICONFIG_CONTEXT_URL"] = context_url
    return env


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
    from cloudinit_cernvm import templates

    texts: list[str] = []
    warnings: list[str] = []
    for name, text in parts:
        if templates.is_template(text):
            try:
                text = templates.render_template(text, variables or {})
            except templates.TemplateError as err:
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
    from cloudinit_cernvm.bounded_process import log_output, run_bounded

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
        records.append({**result.record(), "path": path})
    return records, warnings


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
    from cloudinit_cernvm.bounded_process import log_output

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
    from cloudinit_cernvm.amiconfig_metadata import write_metadata_tree
    from cloudinit_cernvm.bounded_process import run_bounded

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
    record.update(result.record())
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
