"""The provider's network description (the seed's ``network-data``) as
cloud-init's network config.

The microboot stage keeps what the provider gave: OpenStack's
``network_data.json`` (metadata service and config drive) as it is, EC2's
per-interface metadata as the ``network`` item of cloud-init's Ec2 metadata
(``{"interfaces": {"macs": {MAC: {KEY: VALUE}}}}``). They are converted by
cloud-init's own converters, the ones its ConfigDrive, OpenStack and Ec2
datasources use, so that a machine gets the network config stock cloud-init
would give it from the same metadata: version 1 from OpenStack's
(``convert_net_json``), version 2 from EC2's
(``convert_ec2_metadata_network_config``); every release from 20.4 renders
both.

Imported by the datasource only when the seed has ``network-data``. A file
that cannot be used is one warning, and cloud-init's fallback (DHCP on the
first interface) is used, as without one.
"""

from __future__ import annotations

import inspect
import json
import logging

from cloudinit_cernvm import providers, seed

LOG = logging.getLogger(__name__)

#: deepest nesting taken: OpenStack's document goes 4 levels deep, EC2's 4
MAX_DEPTH = 16

#: what the fallback is, for the warning
FALLBACK = "cloud-init's fallback network config (DHCP on the first interface) instead"


def network_config(provider: str, raw: bytes, path: str, distro: object,
                   sys_cfg: dict) -> dict | None:
    """cloud-init's network config from the seed's ``network-data`` RAW (at PATH),
    for PROVIDER; None (one warning when RAW is bad) for the fallback."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        LOG.warning("CernVM: %s: not valid JSON (%s); %s", path, _short(err), FALLBACK)
        return None
    if not isinstance(data, dict) or seed.depth_beyond(data, MAX_DEPTH):
        LOG.warning("CernVM: %s: not a JSON object of at most %d levels; %s",
                    path, MAX_DEPTH, FALLBACK)
        return None
    record = providers.get(provider)
    shape = record.network if record else None
    try:
        if shape == providers.OPENSTACK_NETWORK:
            return _openstack(data, path)
        if shape == providers.EC2_NETWORK:
            return _ec2(data, path, distro, sys_cfg)
    except Exception as err:  # cloud-init's converter refused it: not the boot's end
        LOG.warning("CernVM: %s: cloud-init cannot convert it (%s: %s); %s", path,
                    type(err).__name__, _short(err), FALLBACK)
        return None
    LOG.info("CernVM: %s: no network description is read from %s; ignored", path, provider)
    return None


def _openstack(data: dict, path: str) -> dict | None:
    """OpenStack's ``network_data.json``, as DataSourceConfigDrive and
    DataSourceOpenStack convert it (no known MACs: the machine's are read)."""
    from cloudinit.sources.helpers import openstack

    if not isinstance(data.get("links"), list):
        LOG.warning("CernVM: %s: no 'links' list, so no OpenStack network_data.json; %s",
                    path, FALLBACK)
        return None
    return openstack.convert_net_json(data, known_macs=None)


def _ec2(data: dict, path: str, distro: object, sys_cfg: dict) -> dict | None:
    """EC2's interface metadata, as DataSourceEc2's ``network_config`` converts
    it, with its ``apply_full_imds_network_config`` setting (default on).

    The converter's signature changed: cloud-init 20.4 and 22.4 take
    ``(network_md, macs_to_nics, fallback_nic, full_network_config)``, 25.1 and
    later the distro second (and ``fallback_nic_order``, left at its default,
    as Ec2 does): the distro is passed by name where it is a parameter.
    """
    from cloudinit import net, util
    from cloudinit.sources import DataSourceEc2 as ec2

    macs = (data.get("interfaces") or {}).get("macs") if isinstance(
        data.get("interfaces"), dict) else None
    if not isinstance(macs, dict) or not all(isinstance(v, dict) for v in macs.values()):
        LOG.warning("CernVM: %s: no 'interfaces': {'macs': {MAC: {...}}}, so no EC2 "
                    "interface metadata; %s", path, FALLBACK)
        return None
    datasources = sys_cfg.get("datasource") if isinstance(sys_cfg, dict) else None
    own = datasources.get("Ec2") if isinstance(datasources, dict) else None
    full = util.get_cfg_option_bool(own if isinstance(own, dict) else {},
                                    "apply_full_imds_network_config", True)
    kwargs: dict = {"full_network_config": full,
                    "fallback_nic": None if full else net.find_fallback_nic()}
    convert = ec2.convert_ec2_metadata_network_config
    if "distro" in inspect.signature(convert).parameters:  # cloud-init 25.1+
        kwargs["distro"] = distro
    config = convert(data, **kwargs)
    if not config.get("ethernets"):
        LOG.info("CernVM: %s: no interface of this machine is in EC2's metadata; "
                 "cloud-init's fallback network config", path)
        return None
    return config


def _short(err: BaseException) -> str:
    """An exception's message, one line, bounded (it may quote the file)."""
    text = " ".join(str(err).split())
    return text[:200]
