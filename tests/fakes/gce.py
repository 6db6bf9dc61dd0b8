"""GCE's metadata server, as a fake answers it, and what a GCE machine shows.

Every request needs ``Metadata-Flavor: Google`` (or the legacy
``X-Google-Metadata-Request: True``), else 403; ``?recursive=true`` reads a
directory whole, as JSON.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from tests.fakes.answers import NOT_FOUND, Reply

if TYPE_CHECKING:
    from tests.fakes.metadata import Routes

#: an instance's /sys/class/dmi/id
DMI = {
    "bios_vendor": "Google",
    "sys_vendor": "Google",
    "product_name": "Google Compute Engine",
    "product_serial": "GoogleCloud-8A2C3C46B1B34E5A9B7E0F2D1C0B9A87",
}


def answer(ask: Routes, method: str, path: str, headers: dict[str, str]) -> Reply:
    """The metadata server's answer to one request."""
    # the legacy header is still taken by the v1 tree
    if headers.get("metadata-flavor") != "Google" and \
            headers.get("x-google-metadata-request", "").lower() != "true":
        return 403, b"Missing Metadata-Flavor:Google header."
    i = ask.inst
    base = "/computeMetadata/v1/instance"
    items = {
        f"{base}/attributes/user-data": ask.user_data_reply(),
        f"{base}/id": (200, b"4520031799277581759"),
        f"{base}/hostname": (200, i.hostname.encode()),
        f"{base}/zone": (200, f"projects/123456/zones/{i.zone}".encode()),
        f"{base}/attributes/ssh-keys":
            (200, "".join(f"cernvm:{k}\n" for k in i.keys).encode()),
    }
    if ask.gce_encoding:
        items[f"{base}/attributes/user-data-encoding"] = (200, ask.gce_encoding.encode())
    for name, value in i.attributes.items():
        items[f"{base}/attributes/{name}"] = (200, value.encode())
    url = urlsplit(path)
    if "recursive=true" in url.query.lower():
        # A directory read whole, as JSON (what GCE gives for ?recursive=true).
        attrs = {k.rsplit("/", 1)[1]: v[1].decode("utf-8", "replace")
                 for k, v in items.items() if "/attributes/" in k and v[0] == 200}
        docs = {
            f"{base}/attributes": attrs,
            f"{base}": {"attributes": attrs, "hostname": i.hostname,
                        "id": 4520031799277581759,
                        "zone": f"projects/123456/zones/{i.zone}"},
            "/computeMetadata/v1/project/attributes": {},
        }
        doc = docs.get(url.path.rstrip("/"))
        return NOT_FOUND if doc is None else (200, json.dumps(doc, sort_keys=True).encode())
    return items.get(path, NOT_FOUND)
