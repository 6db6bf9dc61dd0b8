"""The local evidence each simulated cloud shows its machines: DMI strings.

Values as these clouds' machines show them in ``/sys/class/dmi/id`` (the
names are those files'); ``boot(smbios=...)`` takes them as they are. The
clouds recognised from media (ConfigDrive, OpenNebula/HEPiX CD) or from the
DHCP server show a plain QEMU machine.
"""

from __future__ import annotations

from .qemu import METADATA_IP, ROUTER_IP

AZURE_ASSET_TAG = "7783-7084-3265-9085-8269-3286-77"

DMI: dict[str, dict[str, str]] = {
    "EC2": {
        "bios_vendor": "Amazon EC2",
        "sys_vendor": "Amazon EC2",
        "product_name": "t3.micro",
        "product_serial": "ec2e1916-9099-7caf-fd21-01234abcdef0",
        "product_uuid": "ec2e1916-9099-7caf-fd21-01234abcdef0",
        "chassis_asset_tag": "Amazon EC2",
    },
    "GCE": {
        "bios_vendor": "Google",
        "sys_vendor": "Google",
        "product_name": "Google Compute Engine",
        "product_serial": "GoogleCloud-8A2C3C46B1B34E5A9B7E0F2D1C0B9A87",
    },
    "OpenStack": {
        "sys_vendor": "OpenStack Foundation",
        "product_name": "OpenStack Nova",
        "product_uuid": "2f5c4a9e-3d7b-4e1a-9c6f-8b0d2e4f6a1c",
    },
    "CloudStack": {
        "sys_vendor": "Apache Software Foundation",
        "product_name": "CloudStack KVM Hypervisor",
        "product_uuid": "7d1e2f3a-4b5c-4d6e-8f90-a1b2c3d4e5f6",
    },
    "Azure": {
        "sys_vendor": "Microsoft Corporation",
        "product_name": "Virtual Machine",
        "chassis_asset_tag": AZURE_ASSET_TAG,
        "product_uuid": "5b0e6a8c-1f2d-4e3b-9a7c-6d5e4f3a2b1c",
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
