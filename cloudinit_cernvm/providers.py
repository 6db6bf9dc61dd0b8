"""The providers the microboot stage can name in the seed's ``source`` file.

The names are the spellings µCernVM and CernVM images already use; the values
are the same clouds in cloud-init's own spelling (``v1.cloud_name``).
"""

from __future__ import annotations

#: seed ``source`` value -> cloud-init ``cloud_name``
CLOUD_NAMES: dict[str, str] = {
    "EC2": "aws",
    "GCE": "gce",
    "Azure": "azure",
    "OpenStack": "openstack",
    "ConfigDrive": "openstack",
    "CloudStack": "cloudstack",
    "OpenNebula": "opennebula",
    "vSphere": "vmware",
    "NoCloud": "nocloud",
}

#: the names in the order people read them in tables and messages
NAMES: tuple[str, ...] = tuple(CLOUD_NAMES)


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
