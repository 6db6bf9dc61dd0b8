"""What goes onto a context image, whatever its format: the Context record and its checks.

``make-iso`` reads its inputs into one Context; each format's builder lays
the same Context out its own way. The checks that do not depend on the
layout (an OpenSSH public key, a host name, an instance id, the user-data's
size for the format's cloud) live here, beside the record they guard, so
that every builder reads checked values and none repeats a check.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
from dataclasses import dataclass, field

from cloudinit_cernvm import providers

KIB = 1024
#: Largest user-data (as stored, after --convert) a format takes where its
#: provider sets no limit (OpenNebula, HEPiX, NoCloud): this project's cap,
#: far above any real context, which keeps the one base64 line of context.sh
#: quick to parse in the initramfs.
MEDIA_CAP = 1024 * KIB


def user_data_limit(fmt: str) -> int:
    """Largest user-data the images of FMT take: their provider's limit
    (``providers.Provider.user_data_limit``; an image attached by hand is read
    whole, so the bytes as stored count, not their base64), else MEDIA_CAP."""
    return providers.with_media(fmt).user_data_limit or MEDIA_CAP


#: OpenSSH public key types (``*-cert-v01@openssh.com`` certificates too)
SSH_KEY_TYPES = frozenset(
    {
        "ssh-rsa",
        "ssh-dss",
        "ssh-ed25519",
        "ssh-ed448",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    }
)

_HOST_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")

#: a file tree: path on the image ("openstack/latest/user_data") -> content
Tree = dict[str, bytes]


def json_file(value: object) -> bytes:
    """A JSON file of a tree, as the formats that hold JSON write it."""
    return (json.dumps(value, indent=2, sort_keys=True) + "\n").encode("utf-8")


class ContextMediaError(Exception):
    """Bad input or an image that cannot be written; the message is one line."""


@dataclass
class Context:
    """What goes onto the image, checked and independent of the format.

    ``instance_id`` and ``hostname`` are already resolved (options first, then
    --meta-data, then a fresh uuid for the id); ``meta_data`` is the
    --meta-data object as given, merged under the explicit options.
    """

    instance_id: str
    user_data: bytes | None = None
    meta_data: dict[str, object] = field(default_factory=dict)
    ssh_keys: list[str] = field(default_factory=list)
    hostname: str | None = None
    prolog: bytes | None = None
    epilog: bytes | None = None
    #: ``--file``: name on the CD -> content (hepix only)
    files: dict[str, bytes] = field(default_factory=dict)
    #: configdrive: network_data.json as given (checked: an object with links)
    network_data: bytes | None = None
    #: the site's vendor_data.json and vendor_data2.json (checked JSON)
    vendor_data: bytes | None = None
    vendor_data2: bytes | None = None


# --- checks ------------------------------------------------------------------


def check_ssh_keys(text: str, origin: str) -> list[str]:
    """Return the OpenSSH public keys in ``text`` (one per line), or raise.

    A private key or anything that is not ``TYPE BASE64 [COMMENT]`` with a
    blob naming the same type is refused: a wrong file here would either
    leak a secret onto the image or lock the user out of the machine.
    """
    if "PRIVATE KEY" in text or "PuTTY-User-Key-File" in text:
        raise ContextMediaError(
            f"{origin} holds a private key; give the public key (the .pub file)"
        )
    keys = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(None, 2)
        known = bool(fields) and (
            fields[0] in SSH_KEY_TYPES or fields[0].endswith("-cert-v01@openssh.com")
        )
        if len(fields) < 2 or not known:
            raise ContextMediaError(f"{origin}, line {number}: not an OpenSSH public key")
        try:
            blob = base64.b64decode(fields[1], validate=True)
            (length,) = struct.unpack(">I", blob[:4])
            blob_type = blob[4 : 4 + length].decode("ascii")
        except (binascii.Error, struct.error, UnicodeDecodeError):
            raise ContextMediaError(
                f"{origin}, line {number}: not an OpenSSH public key (bad base64 blob)"
            ) from None
        if blob_type != fields[0]:
            raise ContextMediaError(
                f"{origin}, line {number}: key type {fields[0]} does not match its blob"
            )
        if "\x00" in line:
            raise ContextMediaError(f"{origin}, line {number}: NUL byte in the key")
        keys.append(line)
    if not keys:
        raise ContextMediaError(f"{origin} holds no OpenSSH public key")
    return keys


def check_hostname(name: str) -> str:
    """Return ``name`` if it is a valid host name (RFC 1123), else raise."""
    labels = name.rstrip(".").split(".")
    if len(name) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
        raise ContextMediaError(
            f"--hostname {name!r}: not a host name (letters, digits, '-' and '.')"
        )
    return name


def check_instance_id(value: str) -> str:
    """Return ``value`` if it can name an instance on every format, else raise."""
    if not value or len(value) > 255 or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ContextMediaError(f"instance id {value!r}: give 1 to 255 printable characters")
    return value


def check_user_data_size(fmt: str, data: bytes | None) -> None:
    """Raise if the stored user-data is over what ``fmt``'s cloud accepts."""
    limit = user_data_limit(fmt)
    if data is not None and len(data) > limit:
        raise ContextMediaError(
            f"user-data is {len(data)} bytes; the {fmt} format takes at most {limit} bytes"
        )

