"""The end of one pass over the user-data: what the part-handler collected, run once.

At ``__end__`` the handler (``handlers.py``) hands over what it collected
(the amiconfig parts, the µCernVM blocks in their place, the ``sh.before``
scripts) and what cloud-init tells of the instance (:class:`Instance`), and
this module does the rest in one go: nothing when the instance's record
says amiconfig was handled already (a later consume: vendor-data), the
settings, the site's extra user-data (and its µCernVM settings recorded),
only the record on a machine without amiconfig whose user-data asks
nothing of it, else the instance's metadata, the templates rendered, the
payload's pieces in the original's order, and the run (``amiconfig.py``).

Apart from the run so that the run knows nothing of a pass nor of
cloud-init, and from the handler so that it stays a thin adapter.
Standard library only.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from cloudinit_cernvm import amiconfig, safefile

if TYPE_CHECKING:
    from cloudinit_cernvm import amiconfig_input, amiconfig_metadata

# The other rooms of a run are imported past the early returns of ``finish``
# (a later pass of the instance, a machine without amiconfig), as one
# amiconfig module was before: cloud-init calls ``__end__`` at every consume.

LOG = logging.getLogger(__name__)

#: the site's extra context on the root (``amiconfig.sh``'s ``AMI_EXTRA_USER_DATA``)
EXTRA_USER_DATA = "/cernvm/extra-user-data"
#: the names of the extra user-data in the seed (captured from a disk by the microboot stage)
SEED_EXTRA_USER_DATA = "extra-user-data"
SEED_EXTRA_UCONTEXT = "extra-ucontext"
MAX_EXTRA = 16 * 1024 * 1024


class Instance:
    """What cloud-init tells of the instance, as the handler read it from its ``Cloud``.

    ``cernvm_dir`` is this project's records directory in the instance's;
    ``ds_cfg`` the ``datasource: CernVM:`` settings; ``meta_data`` and
    ``public_keys`` the datasource's; ``run_dir`` cloud-init's, holding the
    instance data templates see.
    """

    __slots__ = ("cernvm_dir", "ds_cfg", "instance_id", "meta_data", "provider", "public_keys",
                 "run_dir", "seed_dir")

    def __init__(self, cernvm_dir: str, ds_cfg: Mapping, instance_id: str | None,
                 seed_dir: str | None = None, meta_data: Mapping | None = None,
                 public_keys: list[str] | None = None, run_dir: str = "/run/cloud-init",
                 provider: str | None = None) -> None:
        self.cernvm_dir = cernvm_dir
        self.ds_cfg = ds_cfg
        self.instance_id = instance_id
        self.seed_dir = seed_dir
        self.meta_data = meta_data if meta_data is not None else {}
        self.public_keys = [] if public_keys is None else public_keys
        self.run_dir = run_dir
        self.provider = provider


def _instance_meta(instance: Instance) -> amiconfig_metadata.InstanceMeta:
    from cloudinit_cernvm import amiconfig_metadata

    metadata = instance.meta_data

    def text(key: str) -> str | None:
        value = metadata.get(key)
        return value if isinstance(value, str) and value else None

    address = amiconfig_metadata.from_meta_data(metadata, "local-ipv4")
    return amiconfig_metadata.InstanceMeta(
        instance_id=instance.instance_id,
        local_hostname=text("local-hostname") or text("hostname"),
        public_keys=instance.public_keys,
        availability_zone=text("availability-zone"),
        meta_data=metadata,
        local_ipv4=address or amiconfig_metadata.local_ipv4(),
    )


def _template_variables(instance: Instance, meta: amiconfig_metadata.InstanceMeta) -> dict:
    from cloudinit_cernvm import templates

    data = templates.load_instance_data(instance.run_dir)
    v1 = data.get("v1") if isinstance(data.get("v1"), dict) else {}
    return templates.template_variables(data, {
        "hostname": meta.local_hostname or v1.get("local_hostname"),
        "instance_id": meta.instance_id,
        "provider": instance.provider,
    })


def _extra_user_data(instance: Instance) -> tuple[str, str, str | None] | None:
    """The site's extra user-data: ``(where, text, its µCernVM ucontext file)`` or None.

    The seed's copy (the microboot stage found ``/cernvm/extra-user-data`` on
    a disk) comes first, else the file on the root; ``datasource: CernVM:
    extra_user_data`` names another path (the tests' roots).
    """
    seed_dir = instance.seed_dir
    configured = instance.ds_cfg.get("extra_user_data", EXTRA_USER_DATA)
    candidates = []
    if seed_dir:
        candidates.append((os.path.join(seed_dir, SEED_EXTRA_USER_DATA),
                           os.path.join(seed_dir, SEED_EXTRA_UCONTEXT)))
    if isinstance(configured, str) and os.path.isabs(configured):
        candidates.append((configured, None))
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


def _record_extra_ucernvm(cernvm_dir: str, path: str, text: str, ucontext: str | None) -> None:
    """The extra user-data's µCernVM settings, compared with the seed's ``extra-ucontext``."""
    from cloudinit_cernvm import ucernvm, ucernvm_record  # a site's extra user-data only

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
    json_path, _ = ucernvm_record.write(cernvm_dir, result, path, stem=ucernvm_record.EXTRA_STEM)
    LOG.info("CernVM: %d µCernVM setting(s) of the extra user-data recorded in %s",
             len(result.settings), json_path)


def _pieces(parts: list[tuple[str, str]], blocks: list[tuple[int, str]], texts: list[str],
            extra: tuple[str, str, str | None] | None) -> list[amiconfig_input.Piece]:
    """The payload's pieces in the original's order: parts, µCernVM blocks, extra last."""
    from cloudinit_cernvm import amiconfig_input as ami

    pieces = []
    blocks = list(blocks)
    for index, ((name, _), text) in enumerate(zip(parts, texts)):
        while blocks and blocks[0][0] <= index:
            pieces.append(ami.Piece(ami.UCERNVM, "ucernvm", blocks.pop(0)[1]))
        pieces.append(ami.Piece(ami.AMICONFIG, name, text))
    pieces += [ami.Piece(ami.UCERNVM, "ucernvm", text) for _, text in blocks]
    if extra is not None:
        pieces.append(ami.Piece(ami.EXTRA, extra[0], extra[1]))
    return pieces


def finish(instance: Instance, parts: list[tuple[str, str]], blocks: list[tuple[int, str]],
           scripts: list[amiconfig.Script], base_env: Mapping[str, str]) -> dict | None:
    """The pass's amiconfig run, once per instance; its record, or None when none is new.

    ``parts`` are ``(name, text)`` in order; ``blocks`` the µCernVM blocks as
    ``(index of the next part, text)``.
    """
    cernvm_dir = instance.cernvm_dir
    if amiconfig.read_record(cernvm_dir) is not None:
        # a later consume of this instance (vendor-data): amiconfig ran or was skipped
        if parts or scripts:
            LOG.info("CernVM: amiconfig already handled for this instance (%s); %d part(s)"
                     " of this pass not run", os.path.join(cernvm_dir, amiconfig.RECORD_NAME),
                     len(parts) + len(scripts))
        return None
    from cloudinit_cernvm import amiconfig_settings

    settings, warnings = amiconfig_settings.settings_from(instance.ds_cfg)
    extra = _extra_user_data(instance)
    if extra is not None:
        _record_extra_ucernvm(cernvm_dir, *extra)
    if (not parts and not scripts and extra is None and not warnings
            and not amiconfig.installed(settings.command)):
        return amiconfig.skip_not_installed(cernvm_dir, settings, instance.instance_id)
    from cloudinit_cernvm import amiconfig_input, templates

    meta = _instance_meta(instance)
    variables = None
    if any(templates.is_template(text) for _, text in parts):
        variables = _template_variables(instance, meta)
    texts, template_warnings = amiconfig.prepare_parts(parts, variables)
    payload = amiconfig_input.payload_texts(_pieces(parts, blocks, texts, extra))
    record = amiconfig.contextualize(
        cernvm_dir, payload, scripts, settings, meta, base_env,
        warnings=warnings + template_warnings,
        part_count=len(parts) + (extra is not None),
    )
    LOG.info("CernVM: amiconfig record in %s%s", os.path.join(cernvm_dir, amiconfig.RECORD_NAME),
             f" (extra user-data from {extra[0]})" if extra else "")
    return record
