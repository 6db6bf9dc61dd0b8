"""The local evidence each simulated cloud shows its machines: DMI strings.

Values as these clouds' machines show them in ``/sys/class/dmi/id`` (the
names are those files'), kept with each cloud's fake service
(``tests/fakes/<cloud>.py``); ``boot(smbios=...)`` takes them as they are. The
clouds recognised from media (ConfigDrive, OpenNebula/HEPiX CD) or from the
DHCP server show a plain QEMU machine.
"""

from __future__ import annotations

from tests.fakes import azure
from tests.fakes.metadata import FAKES

from .qemu import METADATA_IP, ROUTER_IP

AZURE_ASSET_TAG = azure.ASSET_TAG

#: each cloud's DMI, from its fake (``tests/fakes/<cloud>.py``)
DMI: dict[str, dict[str, str]] = {
    **{name: dict(fake.DMI) for name, fake in FAKES.items()},
    "ConfigDrive": {},
    "OpenNebula": {},
    "none": {},
}

#: Where each cloud's user-data service sits, as the guest addresses it.
SERVICE_IP = {
    "EC2": METADATA_IP,
    "GCE": METADATA_IP,
    "OpenStack": METADATA_IP,
    "Azure": METADATA_IP,
    "CloudStack": ROUTER_IP,
}
