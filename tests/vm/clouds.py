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
#: a vSphere VM's UUID, as its /sys/class/dmi/id/product_uuid shows it
VSPHERE_UUID = "4225b1c7-3d2e-8a4f-9b1c-0d2e3f4a5b6c"

#: each cloud's DMI, from its fake (``tests/fakes/<cloud>.py``)
DMI: dict[str, dict[str, str]] = {
    **{name: dict(fake.DMI) for name, fake in FAKES.items()},
    # vSphere has no service: a VM of hardware version 14 or later
    "vSphere": {
        "sys_vendor": "VMware, Inc.",
        "product_name": "VMware7,1",
        "product_serial": "VMware-42 25 b1 c7 3d 2e 8a 4f-9b 1c 0d 2e 3f 4a 5b 6c",
        "product_uuid": VSPHERE_UUID,
    },
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
