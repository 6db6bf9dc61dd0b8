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
  last (``amiconfig_input.py``); at ``__end__`` the pass is handed over
  (``amiconfig_pass.py``): the ``sh.before`` scripts run, then amiconfig
  once on all of them (``amiconfig.py``). amiconfig runs at the first
  ``__end__`` of a new instance even when the user-data has no such part,
  as ``amiconfig.sh user`` did: cloud-init calls ``__begin__`` and
  ``__end__`` of every registered handler on each per-instance consume
  (user-data, then vendor-data), 20.4 to 26.x; the instance's
  ``amiconfig.json`` makes the later passes do nothing.
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


def _public_keys(ds) -> list[str]:
    try:
        return [k for k in ds.get_public_ssh_keys() if isinstance(k, str)]
    except Exception:  # a datasource without keys
        return []


def _finish(data, state: _Pass) -> None:
    """At ``__end__``: what the pass collected, handed to one amiconfig run."""
    from cloudinit_cernvm import amiconfig_pass

    ds = data.datasource
    instance = amiconfig_pass.Instance(
        cernvm_dir=_cernvm_dir(data),
        ds_cfg=_ds_cfg(data),
        instance_id=data.get_instance_id(),
        seed_dir=getattr(ds, "seed_dir", None),
        meta_data=getattr(ds, "metadata", None) or {},
        public_keys=_public_keys(ds),
        run_dir=getattr(data.paths, "run_dir", "/run/cloud-init"),
        provider=getattr(ds, "provider", None),
    )
    amiconfig_pass.finish(instance, state.parts, state.blocks, state.scripts, os.environ)
