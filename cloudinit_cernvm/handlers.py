"""cloud-init part-handlers for CernVM's own content types.

cloud-init loads this module through the shim in its handlers directory
(``handler_shim.py``) and calls, for each user-data it consumes,
``handle_part(data, "__begin__", ...)``, then once per part of a listed
type, then ``handle_part(data, "__end__", ...)``. ``data`` is cloud-init's
``Cloud`` object (datasource, paths, configuration). With ``frequency``
once-per-instance, cloud-init calls the handler only when it consumes the
user-data of a new instance, so everything here runs once per instance.

- ``text/amiconfig``, ``text/amiconfig-user-data``: collected in order,
  with the µCernVM blocks in their place and the site's extra user-data
  last (``amiconfig_input.py``); at ``__end__`` the ``sh.before`` scripts
  run, then amiconfig once on all of them (``amiconfig.py``). amiconfig
  runs at the first ``__end__`` of a new instance even when the user-data
  has no such part, as ``amiconfig.sh user`` did: cloud-init calls
  ``__begin__`` and ``__end__`` of every registered handler on each
  per-instance consume (user-data, then vendor-data), 20.4 to 26.x; the
  instance's ``amiconfig.json`` makes the later passes do nothing.
- ``text/x-shellscript-before-amiconfig``: old-syntax ``#!/bin/sh.before``
  scripts, collected and run right before amiconfig.
- ``text/ucernvm``: recorded and compared with the seed (``ucernvm_record.py``).
- the HEPiX site context (the seed's ``hepix/``): its ``prolog.sh`` runs at
  the new instance's first ``__begin__``, before cloud-init walks any part,
  and its ``epilog.sh`` is left for ``scripts_user`` to run last (``hepix.py``).

This module only adapts cloud-init's calls to those plain functions; no
fault of amiconfig, of a script or of a part escapes it as an exception.
cloud-init imports it whenever it consumes user-data, CernVM parts or not,
so it imports those modules only when a part needs them.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from cloudinit_cernvm import content_types as ct

if TYPE_CHECKING:
    from cloudinit_cernvm import amiconfig

LOG = logging.getLogger(__name__)

#: cloud-init passes ``frequency`` (version 2 of the handler interface)
handler_version = 2
#: cloud-init's PER_INSTANCE: called only when a new instance's data is consumed
frequency = "once-per-instance"

CONTENT_START = "__begin__"
CONTENT_END = "__end__"
AMICONFIG_TYPES = (ct.AMICONFIG, ct.AMICONFIG_USER_DATA)
TYPES = (*AMICONFIG_TYPES, ct.UCERNVM, ct.SCRIPT_BEFORE)
#: this project's records, in the instance directory
RECORD_DIR = "cernvm"
#: the site's extra context on the root (``amiconfig.sh``'s ``AMI_EXTRA_USER_DATA``)
EXTRA_USER_DATA = "/cernvm/extra-user-data"
#: the names of the extra user-data in the seed (captured from a disk by the microboot stage)
SEED_EXTRA_USER_DATA = "extra-user-data"
SEED_EXTRA_UCONTEXT = "extra-ucontext"
MAX_EXTRA = 16 * 1024 * 1024


def list_types() -> list[str]:
    """The content types these handlers take from cloud-init."""
    return list(TYPES)


class _Pass:
    """What one pass over the user-data collected, until ``__end__``."""

    __slots__ = ("blocks", "parts", "scripts", "ucernvm_seen")

    def __init__(self) -> None:
        self.parts: list[tuple[str, str]] = []
        #: ``(index of the next part, text)``: µCernVM blocks, for amiconfig's payload
        self.blocks: list[tuple[int, str]] = []
        self.scripts: list[amiconfig.Script] = []
        self.ucernvm_seen = False


_current: _Pass | None = None


def handle_part(data, ctype, filename, payload, frequency=None, headers=None) -> None:
    """cloud-init's entry point; never raises."""
    global _current
    try:
        if ctype == CONTENT_START:
            _current = _Pass()
            _site_prolog(data)
        elif ctype == CONTENT_END:
            done, _current = _current, None
            if done is not None:
                _finish(data, done)
        else:
            if _current is None:  # a caller that skipped __begin__
                _current = _Pass()
            _take(data, _current, ctype, filename or "part", _text(payload))
    except Exception as err:  # the rest of the user-data must still run
        from cloudinit_cernvm.redact import redact_text

        LOG.warning("CernVM: %s handler failed on %s: %s: %s", ctype,
                    redact_text(str(filename)), type(err).__name__, redact_text(str(err)))


def _site_prolog(data) -> None:
    """The seed's HEPiX site context, when it has one (``hepix.py``)."""
    seed_dir = getattr(getattr(data, "datasource", None), "seed_dir", None)
    if not seed_dir or not os.path.isdir(os.path.join(seed_dir, "hepix")):
        return  # the common case: no import
    from cloudinit_cernvm import hepix

    hepix.begin(_cernvm_dir(data), seed_dir, os.path.join(data.get_ipath(), "scripts"),
                _ds_cfg(data), os.environ)


def _text(payload) -> str:
    if payload is None:
        return ""
    if isinstance(payload, bytes):
        return payload.decode("utf-8", "replace")
    return str(payload)


def _take(data, state: _Pass, ctype: str, name: str, text: str) -> None:
    if ctype in AMICONFIG_TYPES:
        state.parts.append((name, text))
        LOG.debug("CernVM: amiconfig part %s collected (%d bytes)", name, len(text))
    elif ctype == ct.SCRIPT_BEFORE:
        from cloudinit_cernvm import amiconfig

        state.scripts.append(amiconfig.Script(name, text))
        LOG.debug("CernVM: sh.before script %s collected", name)
    elif ctype == ct.UCERNVM:
        state.blocks.append((len(state.parts), text))  # amiconfig read it too
        if state.ucernvm_seen:
            from cloudinit_cernvm.redact import redact_text

            LOG.warning("CernVM: %s: a second text/ucernvm part; ignored, as µCernVM"
                        " reads only the first block", redact_text(name))
            return
        state.ucernvm_seen = True
        _record_ucernvm(data, name, text)


def _cernvm_dir(data) -> str:
    # not get_ipath(RECORD_DIR): cloud-init maps names through its own table
    return os.path.join(data.get_ipath(), RECORD_DIR)


def _ds_cfg(data) -> dict:
    """``datasource: CernVM:`` from the system configuration."""
    cfg = getattr(data, "cfg", None) or {}
    ds = cfg.get("datasource") if isinstance(cfg, dict) else None
    section = ds.get("CernVM") if isinstance(ds, dict) else None
    return section if isinstance(section, dict) else {}


def _seed_ucontext(data) -> dict | None:
    """The seed's ``ucontext`` settings, or None when there is nothing to compare."""
    seed_dir = getattr(data.datasource, "seed_dir", None)
    if not seed_dir or not os.path.exists(os.path.join(seed_dir, "ucontext")):
        return None
    from cloudinit_cernvm import seed as seedlib

    try:
        return seedlib.read_ucontext(seed_dir)
    except seedlib.SeedError as err:
        from cloudinit_cernvm.redact import redact_text

        LOG.warning("CernVM: µCernVM part not compared with the seed: %s", redact_text(str(err)))
        return None


def _record_ucernvm(data, name: str, text: str) -> None:
    from cloudinit_cernvm import ucernvm_record

    seed_settings = _seed_ucontext(data)
    result = ucernvm_record.check(text, seed_settings, name=f"text/ucernvm part {name}")
    for problem in result.warnings:
        LOG.warning("CernVM: %s", problem)
    json_path, _ = ucernvm_record.write(_cernvm_dir(data), result, name)
    LOG.info("CernVM: %d µCernVM setting(s) recorded in %s%s", len(result.settings), json_path,
             "" if result.compared else " (the seed has no ucontext to compare with)")


def _instance_meta(data) -> amiconfig.InstanceMeta:
    from cloudinit_cernvm import amiconfig

    ds = data.datasource
    metadata = getattr(ds, "metadata", None) or {}
    try:
        keys = [k for k in ds.get_public_ssh_keys() if isinstance(k, str)]
    except Exception:  # a datasource without keys
        keys = []

    def text(key: str) -> str | None:
        value = metadata.get(key)
        return value if isinstance(value, str) and value else None

    from cloudinit_cernvm import amiconfig_metadata

    address = amiconfig_metadata.from_meta_data(metadata, "local-ipv4")
    return amiconfig.InstanceMeta(
        instance_id=data.get_instance_id(),
        local_hostname=text("local-hostname") or text("hostname"),
        public_keys=keys,
        availability_zone=text("availability-zone"),
        meta_data=metadata,
        local_ipv4=address or amiconfig_metadata.local_ipv4(),
    )


def _template_variables(data, meta: amiconfig.InstanceMeta) -> dict:
    from cloudinit_cernvm import amiconfig

    paths = data.paths
    instance = amiconfig.load_instance_data(getattr(paths, "run_dir", "/run/cloud-init"))
    v1 = instance.get("v1") if isinstance(instance.get("v1"), dict) else {}
    return amiconfig.template_variables(instance, {
        "hostname": meta.local_hostname or v1.get("local_hostname"),
        "instance_id": meta.instance_id,
        "provider": getattr(data.datasource, "provider", None),
    })


def _extra_user_data(data) -> tuple[str, str, str | None] | None:
    """The site's extra user-data: ``(where, text, its µCernVM ucontext file)`` or None.

    The seed's copy (the microboot stage found ``/cernvm/extra-user-data`` on
    a disk) comes first, else the file on the root; ``datasource: CernVM:
    extra_user_data`` names another path (the tests' roots).
    """
    seed_dir = getattr(data.datasource, "seed_dir", None)
    configured = _ds_cfg(data).get("extra_user_data", EXTRA_USER_DATA)
    candidates = []
    if seed_dir:
        candidates.append((os.path.join(seed_dir, SEED_EXTRA_USER_DATA),
                           os.path.join(seed_dir, SEED_EXTRA_UCONTEXT)))
    if isinstance(configured, str) and os.path.isabs(configured):
        candidates.append((configured, None))
    from cloudinit_cernvm import safefile

    for path, ucontext in candidates:
        if not os.path.lexists(path):
            continue
        try:
            raw = safefile.read_regular(path, MAX_EXTRA)
        except OSError as err:
            LOG.warning("CernVM: extra user-data %s not used: %s", path, err.strerror or err)
            continue
        return path, raw.decode("utf-8", "replace"), ucontext
    return None


def _record_extra_ucernvm(data, path: str, text: str, ucontext: str | None) -> None:
    """The extra user-data's µCernVM settings, compared with the seed's ``extra-ucontext``."""
    from cloudinit_cernvm import safefile, ucernvm, ucernvm_record

    if ucernvm.BEGIN not in text.split("\n"):
        return
    seed_settings = None
    if ucontext and os.path.lexists(ucontext):
        try:
            seed_settings = ucernvm.parse_ucontext(
                safefile.read_regular(ucontext, MAX_EXTRA).decode("utf-8", "replace"))
        except OSError as err:
            LOG.warning("CernVM: %s not compared: %s", ucontext, err.strerror or err)
    result = ucernvm_record.check(text, seed_settings, name=f"extra user-data {path}")
    for problem in result.warnings:
        LOG.warning("CernVM: %s", problem)
    json_path, _ = ucernvm_record.write(_cernvm_dir(data), result, path,
                                        stem=ucernvm_record.EXTRA_STEM)
    LOG.info("CernVM: %d µCernVM setting(s) of the extra user-data recorded in %s",
             len(result.settings), json_path)


def _pieces(state: _Pass, texts: list[str], extra: tuple[str, str, str | None] | None):
    """The payload's pieces in the original's order: parts, µCernVM blocks, extra last."""
    from cloudinit_cernvm import amiconfig_input as ami

    pieces = []
    blocks = list(state.blocks)
    for index, ((name, _), text) in enumerate(zip(state.parts, texts)):
        while blocks and blocks[0][0] <= index:
            pieces.append(ami.Piece(ami.UCERNVM, "ucernvm", blocks.pop(0)[1]))
        pieces.append(ami.Piece(ami.AMICONFIG, name, text))
    pieces += [ami.Piece(ami.UCERNVM, "ucernvm", text) for _, text in blocks]
    if extra is not None:
        pieces.append(ami.Piece(ami.EXTRA, extra[0], extra[1]))
    return pieces


def _finish(data, state: _Pass) -> None:
    from cloudinit_cernvm import amiconfig, amiconfig_input

    cernvm_dir = _cernvm_dir(data)
    if amiconfig.read_record(cernvm_dir) is not None:
        # a later consume of this instance (vendor-data): amiconfig ran or was skipped
        if state.parts or state.scripts:
            LOG.info("CernVM: amiconfig already handled for this instance (%s); %d part(s)"
                     " of this pass not run", os.path.join(cernvm_dir, amiconfig.RECORD_NAME),
                     len(state.parts) + len(state.scripts))
        return
    settings, warnings = amiconfig.settings_from(_ds_cfg(data))
    extra = _extra_user_data(data)
    if extra is not None:
        _record_extra_ucernvm(data, *extra)
    if (not state.parts and not state.scripts and extra is None and not warnings
            and not amiconfig.installed(settings.command)):
        amiconfig.skip_not_installed(cernvm_dir, settings, data.get_instance_id())
        return
    meta = _instance_meta(data)
    variables = None
    if any(amiconfig.is_template(text) for _, text in state.parts):
        variables = _template_variables(data, meta)
    texts, template_warnings = amiconfig.prepare_parts(state.parts, variables)
    payload = amiconfig_input.payload_texts(_pieces(state, texts, extra))
    amiconfig.contextualize(
        cernvm_dir, payload, state.scripts, settings, meta, os.environ,
        warnings=warnings + template_warnings,
        part_count=len(state.parts) + (extra is not None),
    )
    LOG.info("CernVM: amiconfig record in %s%s", os.path.join(cernvm_dir, amiconfig.RECORD_NAME),
             f" (extra user-data from {extra[0]})" if extra else "")
