"""Azure's instance metadata service (IMDS), as a fake answers it, and what
an Azure machine shows. Every request needs ``Metadata: true`` and an
``api-version``, else 400 with Azure's JSON error; the wireserver (ready
report) is ``wireserver.py``.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from tests.fakes.answers import NOT_FOUND, Reply

if TYPE_CHECKING:
    from tests.fakes.metadata import Routes

#: the chassis asset tag every Azure VM shows (cloud-init's own test of Azure)
ASSET_TAG = "7783-7084-3265-9085-8269-3286-77"

#: a VM's /sys/class/dmi/id
DMI = {
    "sys_vendor": "Microsoft Corporation",
    "product_name": "Virtual Machine",
    "chassis_asset_tag": ASSET_TAG,
    "product_uuid": "5b0e6a8c-1f2d-4e3b-9a7c-6d5e4f3a2b1c",
}


def answer(ask: Routes, method: str, path: str, headers: dict[str, str]) -> Reply:
    """IMDS's answer to one request."""
    if headers.get("metadata") != "true":
        return 400, b'{"error": "Bad request. Required metadata header not specified"}'
    i = ask.inst
    url = urlsplit(path)
    if "api-version" not in url.query:
        return 400, b'{"error": "Bad request. api-version was not specified"}'
    base = "/metadata/instance/compute"
    ud = base64.b64encode(ask.user_data or b"")
    items = {
        f"{base}/userData": (200, ud),
        f"{base}/vmId": (200, b"5c5b8e1a-3e0d-4d6b-9b9a-0123456789ab"),
        f"{base}/name": (200, i.hostname.split(".")[0].encode()),
        f"{base}/location": (200, i.region.encode()),
        f"{base}/zone": (200, b"1"),
    }
    return items.get(url.path, NOT_FOUND)
