"""The providers: one record each, the facts every module reads about a cloud.

A provider's other homes are its shell file (``microboot/providers/<name in
lower case>.sh``: where its data comes from), its lines in
``microboot/rules`` (how it is recognised) and, if it has a service, its
fake under ``tests/fakes/``; ``tests/unit/test_provider_homes.py`` fails
when one of them is missing. The names are the spellings µCernVM and CernVM
images already use in the seed's ``source`` file.
"""

from __future__ import annotations

from typing import NamedTuple

#: what a provider can give the machine (``Provider.gives``)
USER_DATA = "user-data"
META_DATA = "meta-data"
VENDOR_DATA = "vendor-data"
NETWORK = "network"
SITE = "site"

#: shapes of the seed's ``network-data`` (``Provider.network``)
OPENSTACK_NETWORK = "network_data.json"
EC2_NETWORK = "ec2-interfaces"

#: the cloud-init stage a delegate runs in (``Provider.delegate_stage``)
LOCAL_STAGE = "local"
NETWORK_STAGE = "network"

KIB = 1024


class Provider(NamedTuple):
    """One cloud as this project knows it.

    A NamedTuple, not a dataclass: the datasource imports this module at
    every boot, and ``dataclasses`` would pull in ``inspect``.
    """

    #: the seed's ``source`` spelling
    name: str
    #: cloud-init's spelling of the same cloud (``v1.cloud_name``)
    cloud_name: str
    #: cloud-init's own datasource for it (``DataSource<delegate>``), which
    #: reads the context when the seed is missing; None: it has none
    delegate: str | None
    #: the stage that datasource runs in: ``local`` (disks, Azure) or ``network``
    delegate_stage: str
    #: largest user-data the cloud takes, in bytes (None: it sets no limit)
    user_data_limit: int | None = None
    #: whether the cloud counts that limit on the base64 form
    limit_counts_base64: bool = False
    #: the seed's ``network-data`` shape it gives (None: no network description)
    network: str | None = None
    #: whether it gives vendor-data (OpenStack's ``vendor_data*.json``)
    vendor_data: bool = False
    #: whether it gives a site context (HEPiX ``prolog.sh``/``epilog.sh``)
    site: bool = False
    #: whether it gives meta-data beyond the user-data (instance id, keys, ...)
    meta_data: bool = True
    #: whether the stage asks a service on the network (not only disks)
    service: bool = False
    #: ``cernvm-context make-iso`` formats whose image this provider reads
    media: tuple[str, ...] = ()

    @property
    def gives(self) -> tuple[str, ...]:
        """What the provider gives, in the order of README's table."""
        given = {USER_DATA: True, VENDOR_DATA: self.vendor_data, SITE: self.site,
                 NETWORK: self.network is not None, META_DATA: self.meta_data}
        return tuple(what for what, yes in given.items() if yes)

    @property
    def shell_file(self) -> str:
        """Its file under ``microboot/providers/``."""
        return f"{self.name.lower()}.sh"


PROVIDERS: tuple[Provider, ...] = (
    # 16 KiB of raw user-data (EC2's documented limit, before base64)
    Provider("EC2", "aws", "Ec2", NETWORK_STAGE, 16 * KIB, network=EC2_NETWORK, service=True),
    # a metadata value holds at most 256 KiB
    Provider("GCE", "gce", "GCE", NETWORK_STAGE, 256 * KIB, service=True),
    # CustomData: 64 KiB of base64; its datasource brings up its own DHCP
    Provider("Azure", "azure", "Azure", LOCAL_STAGE, 64 * KIB, True, service=True),
    # nova's API takes 65535 bytes of base64
    Provider("OpenStack", "openstack", "OpenStack", NETWORK_STAGE, 64 * KIB, True,
             network=OPENSTACK_NETWORK, vendor_data=True, service=True),
    Provider("ConfigDrive", "openstack", "ConfigDrive", LOCAL_STAGE, 64 * KIB, True,
             network=OPENSTACK_NETWORK, vendor_data=True, media=("configdrive",)),
    # the default vm.userdata.max.length, counted on the base64 form
    Provider("CloudStack", "cloudstack", "CloudStack", NETWORK_STAGE, 32 * KIB, True,
             service=True, media=("cloudstack",)),
    Provider("OpenNebula", "opennebula", "OpenNebula", LOCAL_STAGE, site=True,
             media=("opennebula", "hepix")),
    # µCernVM's CD with user-data.txt: cloud-init's VMware datasource reads
    # guestinfo instead, so nothing can stand in for this stage
    Provider("vSphere", "vmware", None, "", meta_data=False, media=("vsphere",)),
    Provider("NoCloud", "nocloud", "NoCloud", LOCAL_STAGE, service=True, media=("nocloud",)),
)

BY_NAME: dict[str, Provider] = {p.name: p for p in PROVIDERS}

#: seed ``source`` value -> cloud-init ``cloud_name``
CLOUD_NAMES: dict[str, str] = {p.name: p.cloud_name for p in PROVIDERS}

#: the names in the order people read them in tables and messages
NAMES: tuple[str, ...] = tuple(BY_NAME)


def canonical(name: str) -> str | None:
    """Return the provider's canonical spelling, or None if it is unknown.

    Older tools wrote some names in other cases (``ec2``, ``opennebula``);
    matching ignores case so that such seeds still work.
    """
    wanted = name.strip().lower()
    for known in NAMES:
        if known.lower() == wanted:
            return known
    return None


def get(name: str | None) -> Provider | None:
    """The record of provider NAME (any case), or None."""
    known = canonical(name) if name else None
    return BY_NAME[known] if known else None


def with_media(fmt: str) -> Provider:
    """The provider that reads images of ``make-iso`` format FMT."""
    return next(p for p in PROVIDERS if fmt in p.media)
