"""``cernvm-context make-iso``: context images for KVM, OpenNebula, OpenStack, CloudStack...

A context image is a small ISO 9660 disk that carries the user-data to a
virtual machine where no metadata service does: a plain KVM host, an
OpenNebula context CD, an OpenStack or CloudStack config drive. Each format
is laid out the way the cloud itself writes it, so that cloud-init's own
datasources, CernVM's older tools and this project's microboot stage all read
it:

``hepix`` (label ``CONTEXT``)
    the HEPiX context CD: ``context.sh`` with ``EC2_USER_DATA`` (base64) and
    ``ROOT_PUBKEY`` naming the key file ``root.pub`` on the same disk, plus
    ``prolog.sh`` and ``epilog.sh`` (the site contextualization) and the
    ``--file`` files, at the top under their names and listed in ``FILES``,
    when given.
``opennebula`` (label ``CONTEXT``)
    OpenNebula's context CD: ``context.sh`` with ``USER_DATA`` (base64),
    ``USERDATA_ENCODING=base64``, ``SSH_PUBLIC_KEY``, ``SET_HOSTNAME`` (and
    ``HOSTNAME``, which cloud-init 20.4 reads instead).
``configdrive`` (label ``config-2``)
    OpenStack nova's config drive: ``openstack/latest/`` and the first dated
    version ``openstack/2012-08-10/``, each with ``meta_data.json`` and
    ``user_data``; ``vendor_data.json`` in ``latest`` (``{}``, or the site's
    vendor-data from --vendor-data), and ``vendor_data2.json`` from
    --vendor-data2.
``cloudstack`` (label ``config-2``)
    CloudStack's config drive: ``cloudstack/userdata/user_data.txt``,
    ``cloudstack/metadata/<name>.txt``, and the OpenStack-compatible tree
    CloudStack writes beside it (``openstack/latest/`` only).
``nocloud`` (label ``cidata``)
    cloud-init's NoCloud seed, as ``cloud-localds`` writes it: ``user-data``
    (always there, maybe empty: cloud-init needs both files) and
    ``meta-data`` with ``instance-id``, ``local-hostname``, ``public-keys``
    and the --meta-data items, written as JSON (which is YAML, so every
    NoCloud reader takes it, and the microboot stage reads it without a
    YAML parser).

``context.sh`` is written as OpenNebula writes it (``NAME='value'``, a ``'``
inside a value as ``'\\''``), so sourcing it can never expand anything;
readers of this project parse it and never run it.

This module is not on the boot path. pycdlib, the ISO 9660 writer, is its
dependency alone and is imported only where the image is written.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import io
import json
import os
import re
import struct
import sys
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cloudinit_cernvm import providers

FORMATS: tuple[str, ...] = ("hepix", "opennebula", "configdrive", "cloudstack", "nocloud")

#: the volume label each cloud's readers look for
LABELS: dict[str, str] = {
    "hepix": "CONTEXT",
    "opennebula": "CONTEXT",
    "configdrive": "config-2",
    "cloudstack": "config-2",
    "nocloud": "cidata",
}

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


#: Largest vendor_data.json / vendor_data2.json: the microboot stage's cap
#: (OPENSTACK_VD_MAX in microboot/providers/openstack.sh).
VENDOR_DATA_LIMIT = 256 * KIB

#: Inputs larger than this are refused before they are read whole.
INPUT_CAP = 16 * 1024 * KIB

#: nova's first OpenStack metadata version (Folsom), which every reader knows
OPENSTACK_DATED_VERSION = "2012-08-10"

#: CloudStack's metadata file names that it mirrors into meta_data.json
CLOUDSTACK_TO_OPENSTACK: dict[str, str] = {
    "availability-zone": "availability_zone",
    "local-hostname": "hostname",
    "vm-id": "uuid",
    "public-hostname": "name",
    "cloud-domain": "cloud-domain",
    "cloud-domain-id": "cloud-domain-id",
    "cloud-name": "cloud-name",
    "hypervisor-host-name": "hypervisor-host-name",
}

#: context.sh variables set from --user-data, never from --meta-data
USER_DATA_VARIABLES = frozenset(
    {"USER_DATA", "USERDATA", "USERDATA_ENCODING", "USER_DATA_ENCODING", "EC2_USER_DATA"}
)

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

_SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_CLOUDSTACK_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,59}\Z")  # Joliet: 64 characters
_HOST_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")

#: a file tree: path on the image ("openstack/latest/user_data") -> content
Tree = dict[str, bytes]

#: files that keep the execute bit on the image (Rock Ridge mode)
EXECUTABLES = frozenset({"prolog.sh", "epilog.sh"})


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


# --- context.sh ----------------------------------------------------------------


def shell_quote(value: str) -> str:
    """Quote ``value`` for sh as OpenNebula does: single quotes, ``'`` as ``'\\''``.

    Nothing inside single quotes is special to sh, so a reader that sources
    the file gets the value back byte for byte and runs nothing.
    """
    if "\x00" in value:
        raise ContextMediaError("a context.sh value holds a NUL byte")
    return "'" + value.replace("'", "'\\''") + "'"


def _context_value(name: str, value: object) -> str:
    """A --meta-data value as context.sh text (OpenNebula writes YES/NO)."""
    if isinstance(value, bool):
        return "YES" if value else "NO"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise ContextMediaError(
        f"--meta-data: {name} must be a string, number or boolean for context.sh"
    )


def context_variables(meta_data: Mapping[str, object]) -> dict[str, str]:
    """The --meta-data object as context.sh variables, checked."""
    variables = {}
    for name, value in meta_data.items():
        if not _SHELL_NAME.match(name):
            raise ContextMediaError(f"--meta-data: {name!r} is not a shell variable name")
        if name.upper() in USER_DATA_VARIABLES:
            raise ContextMediaError(f"--meta-data: {name} is set from --user-data")
        variables[name] = _context_value(name, value)
    return variables


def render_context_sh(variables: Mapping[str, str]) -> bytes:
    """context.sh text: a header line, then ``NAME='value'`` sorted by name."""
    lines = ["# Context variables generated by cernvm-context"]
    lines += [f"{name}={shell_quote(variables[name])}" for name in sorted(variables)]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _set_hostname(variables: dict[str, str], hostname: str) -> None:
    """OpenNebula's SET_HOSTNAME, and HOSTNAME, the one cloud-init 20.4 reads."""
    variables["SET_HOSTNAME"] = hostname
    variables["HOSTNAME"] = hostname


def hepix_tree(ctx: Context) -> Tree:
    """The HEPiX context CD: context.sh, root.pub, prolog.sh, epilog.sh."""
    variables = context_variables(ctx.meta_data)
    variables["VMID"] = ctx.instance_id
    tree: Tree = {}
    if ctx.user_data is not None:
        variables["EC2_USER_DATA"] = _b64(ctx.user_data)
    if ctx.hostname:
        _set_hostname(variables, ctx.hostname)
    if ctx.ssh_keys:
        variables["ROOT_PUBKEY"] = "root.pub"
        tree["root.pub"] = ("\n".join(ctx.ssh_keys) + "\n").encode("utf-8")
    if ctx.prolog is not None:
        tree["prolog.sh"] = ctx.prolog
    if ctx.epilog is not None:
        tree["epilog.sh"] = ctx.epilog
    if ctx.files:
        variables["FILES"] = " ".join(sorted(ctx.files))
        tree.update(ctx.files)
    tree["context.sh"] = render_context_sh(variables)
    return tree


def opennebula_tree(ctx: Context) -> Tree:
    """OpenNebula's context CD: context.sh alone."""
    variables = context_variables(ctx.meta_data)
    variables["VMID"] = ctx.instance_id
    if ctx.user_data is not None:
        variables["USER_DATA"] = _b64(ctx.user_data)
        variables["USERDATA_ENCODING"] = "base64"
    if ctx.hostname:
        _set_hostname(variables, ctx.hostname)
    if ctx.ssh_keys:
        variables["SSH_PUBLIC_KEY"] = "\n".join(ctx.ssh_keys)
    return {"context.sh": render_context_sh(variables)}


# --- OpenStack and CloudStack trees ---------------------------------------------


def _key_names(keys: list[str]) -> list[str]:
    """Names for public_keys: the key's comment (as CloudStack does), else key-N."""
    names: list[str] = []
    for number, key in enumerate(keys, 1):
        fields = key.split(None, 2)
        name = fields[2].split()[0] if len(fields) > 2 and fields[2].split() else ""
        if not name or name in names:
            name = f"key-{number}"
        names.append(name)
    return names


def _openstack_keys(meta: dict[str, object], keys: list[str]) -> None:
    """Set nova's two spellings of the keys: ``public_keys`` and ``keys``."""
    if not keys:
        return
    names = _key_names(keys)
    meta["public_keys"] = {name: key + "\n" for name, key in zip(names, keys)}
    meta["keys"] = [{"name": n, "type": "ssh", "data": k + "\n"} for n, k in zip(names, keys)]


def _json(value: object) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True) + "\n").encode("utf-8")


def configdrive_tree(ctx: Context) -> Tree:
    """OpenStack's config drive: ``openstack/{2012-08-10,latest}/``.

    ``network_data.json`` only from ``--network-data``: nova writes one for
    static networks, and an empty one would make cloud-init's ConfigDrive
    datasource (and the CernVM datasource) drop DHCP.
    """
    meta: dict[str, object] = {"launch_index": 0}
    meta.update(ctx.meta_data)
    meta["uuid"] = ctx.instance_id
    if ctx.hostname:
        meta["hostname"] = ctx.hostname
        meta.setdefault("name", ctx.hostname)
    _openstack_keys(meta, ctx.ssh_keys)
    tree: Tree = {}
    for version in (OPENSTACK_DATED_VERSION, "latest"):
        tree[f"openstack/{version}/meta_data.json"] = _json(meta)
        if ctx.user_data is not None:
            tree[f"openstack/{version}/user_data"] = ctx.user_data
        if ctx.network_data is not None:
            tree[f"openstack/{version}/network_data.json"] = ctx.network_data
    # vendor-data came with Havana (2013-10-17): in latest only, as nova writes it
    tree["openstack/latest/vendor_data.json"] = ctx.vendor_data or b"{}"
    if ctx.vendor_data2 is not None:
        tree["openstack/latest/vendor_data2.json"] = ctx.vendor_data2
    return tree


def cloudstack_tree(ctx: Context) -> Tree:
    """CloudStack's config drive: ``cloudstack/`` and its ``openstack/latest/``.

    As CloudStack writes it: one ``<name>.txt`` per metadata item (no
    newline added), ``user_data.txt`` raw, and ``meta_data.json`` derived from
    the metadata items, ``vendor_data.json`` empty. --meta-data items with
    CloudStack-style names and scalar values become ``.txt`` files too.
    """
    items: dict[str, str] = {}
    for name, value in ctx.meta_data.items():
        if (
            _CLOUDSTACK_NAME.match(name)
            and isinstance(value, (str, int, float))
            and not (isinstance(value, bool))
        ):
            items[name] = str(value)
    items["instance-id"] = ctx.instance_id
    items["vm-id"] = ctx.instance_id
    if ctx.hostname:
        items["local-hostname"] = ctx.hostname
    if ctx.ssh_keys:
        items["public-keys"] = "\n".join(ctx.ssh_keys)

    meta: dict[str, object] = {
        CLOUDSTACK_TO_OPENSTACK[name]: value
        for name, value in items.items()
        if name in CLOUDSTACK_TO_OPENSTACK
    }
    meta.update(ctx.meta_data)
    meta["uuid"] = ctx.instance_id
    if ctx.hostname:
        meta["hostname"] = ctx.hostname
    _openstack_keys(meta, ctx.ssh_keys)

    tree: Tree = {f"cloudstack/metadata/{name}.txt": v.encode("utf-8") for name, v in items.items()}
    if ctx.user_data is not None:
        tree["cloudstack/userdata/user_data.txt"] = ctx.user_data
        tree["openstack/latest/user_data"] = ctx.user_data
    tree["openstack/latest/meta_data.json"] = _json(meta)
    tree["openstack/latest/vendor_data.json"] = b"{}"
    return tree


def nocloud_tree(ctx: Context) -> Tree:
    """cloud-init's NoCloud seed disk: ``user-data`` and ``meta-data``."""
    meta: dict[str, object] = dict(ctx.meta_data)
    meta["instance-id"] = ctx.instance_id
    if ctx.hostname:
        meta["local-hostname"] = ctx.hostname
    if ctx.ssh_keys:
        meta["public-keys"] = list(ctx.ssh_keys)
    return {"user-data": ctx.user_data or b"", "meta-data": _json(meta)}


BUILDERS = {
    "hepix": hepix_tree,
    "opennebula": opennebula_tree,
    "configdrive": configdrive_tree,
    "cloudstack": cloudstack_tree,
    "nocloud": nocloud_tree,
}


def build_tree(fmt: str, ctx: Context) -> Tree:
    """The file tree of ``fmt`` for ``ctx``, after the format's size check."""
    if fmt not in BUILDERS:
        raise ContextMediaError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    check_user_data_size(fmt, ctx.user_data)
    if fmt != "hepix" and (ctx.prolog is not None or ctx.epilog is not None):
        raise ContextMediaError("--prolog and --epilog go with --format hepix only")
    if fmt != "hepix" and ctx.files:
        raise ContextMediaError("--file goes with --format hepix only")
    if fmt != "configdrive" and (ctx.vendor_data is not None or ctx.vendor_data2 is not None):
        raise ContextMediaError(
            "--vendor-data and --vendor-data2 go with --format configdrive only"
        )
    return BUILDERS[fmt](ctx)


# --- ISO 9660 ----------------------------------------------------------------


def _iso9660_name(name: str, is_dir: bool, taken: set[str]) -> str:
    """An ISO 9660 (level 3) identifier for ``name``, unique within ``taken``.

    ISO 9660 allows only A-Z, 0-9 and ``_``; the real name travels in the
    Rock Ridge and Joliet records, which every reader here uses.
    """

    def clean(text: str) -> str:
        return re.sub(r"[^A-Z0-9_]", "_", text.upper())

    if is_dir:
        stem, ext, room = clean(name), "", 31
    else:
        base, dot, extension = name.rpartition(".")
        if not dot or not base:
            base, extension = name, ""
        ext = clean(extension)[:3]
        stem, room = clean(base), 30 - len(ext)

    def full(candidate: str) -> str:
        return candidate if is_dir else f"{candidate}.{ext}"

    candidate, counter = stem[:room], 0
    while full(candidate) in taken:
        counter += 1
        suffix = f"_{counter}"
        candidate = stem[: room - len(suffix)] + suffix
    taken.add(full(candidate))
    return full(candidate)


def write_iso(tree: Mapping[str, bytes], label: str, fp: io.BufferedIOBase) -> None:
    """Write ``tree`` as an ISO 9660 image with Joliet and Rock Ridge to ``fp``.

    ``label`` is the volume identifier (``CONTEXT``, ``config-2``): blkid and
    /dev/disk/by-label show it, and each cloud's readers look for it.
    """
    try:
        import pycdlib  # the package does not depend on it: make-iso alone does
    except ImportError:
        raise ContextMediaError(
            "make-iso needs pycdlib: pip install 'cloudinit-cernvm[iso]'"
        ) from None

    try:
        _master(pycdlib.PyCdlib(), tree, label, fp)
    except pycdlib.pycdlibexception.PyCdlibException as err:
        raise ContextMediaError(f"cannot build the image: {err}") from None


def _master(iso: Any, tree: Mapping[str, bytes], label: str, fp: io.BufferedIOBase) -> None:
    """Lay ``tree`` out on the new PyCdlib object ``iso`` and write it to ``fp``."""
    iso.new(
        interchange_level=3,
        vol_ident=label,
        app_ident_str="CERNVM-CONTEXT",
        joliet=3,
        rock_ridge="1.09",
    )
    iso_paths: dict[str, str] = {"": ""}
    taken: dict[str, set[str]] = {}

    def add_dir(path: str) -> str:
        if path in iso_paths:
            return iso_paths[path]
        parent, _, name = path.rpartition("/")
        parent_iso = add_dir(parent)
        iso_name = _iso9660_name(name, True, taken.setdefault(parent, set()))
        iso_paths[path] = f"{parent_iso}/{iso_name}"
        iso.add_directory(iso_paths[path], rr_name=name, joliet_path="/" + path, file_mode=0o40555)
        return iso_paths[path]

    for path in sorted(tree):
        data = tree[path]
        parent, _, name = path.rpartition("/")
        parent_iso = add_dir(parent)
        iso_name = _iso9660_name(name, False, taken.setdefault(parent, set()))
        mode = 0o100555 if name in EXECUTABLES else 0o100444
        iso.add_fp(
            io.BytesIO(data),
            len(data),
            f"{parent_iso}/{iso_name};1",
            rr_name=name,
            joliet_path="/" + path,
            file_mode=mode,
        )
    iso.write_fp(fp)
    iso.close()


def write_image(tree: Mapping[str, bytes], label: str, out: str, force: bool = False) -> None:
    """Write the image to ``out`` atomically: whole, or not at all.

    The image goes to a temporary file beside ``out`` (mode 0600: it holds
    the user-data), then takes its name in one step; without ``force`` an
    existing ``out`` is kept and the call fails. On any failure the
    temporary file is removed.
    """
    if not force and os.path.lexists(out):
        raise ContextMediaError(f"{out} exists; use --force to overwrite it")
    directory = os.path.dirname(os.path.abspath(out))
    try:
        handle, tmp = tempfile.mkstemp(
            dir=directory, prefix="." + os.path.basename(out) + ".", suffix=".tmp"
        )
    except OSError as err:
        raise ContextMediaError(f"cannot write in {directory}: {err.strerror}") from None
    try:
        with os.fdopen(handle, "wb") as fp:
            write_iso(tree, label, fp)
            fp.flush()
            os.fsync(fp.fileno())
        if force:
            os.replace(tmp, out)
        else:
            try:
                os.link(tmp, out)  # fails if out appeared meanwhile: never clobbers
            except FileExistsError:
                raise ContextMediaError(f"{out} exists; use --force to overwrite it") from None
            os.unlink(tmp)
    except OSError as err:
        raise ContextMediaError(f"cannot write {out}: {err.strerror or err}") from None
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


# --- inputs and the command line -------------------------------------------------


def read_input(path: str, what: str, stdin: io.BufferedIOBase | None = None) -> bytes:
    """Read a file named on the command line (``-``: stdin), at most INPUT_CAP."""
    try:
        if path == "-":
            data = (stdin or sys.stdin.buffer).read(INPUT_CAP + 1)
        else:
            with open(path, "rb") as fp:
                data = fp.read(INPUT_CAP + 1)
    except OSError as err:
        raise ContextMediaError(f"{what} {path}: {err.strerror}") from None
    if len(data) > INPUT_CAP:
        raise ContextMediaError(f"{what} {path}: larger than {INPUT_CAP} bytes")
    return data


def read_meta_data(path: str) -> dict[str, object]:
    """The --meta-data file: a JSON object."""
    raw = read_input(path, "--meta-data")
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise ContextMediaError(f"--meta-data {path}: not JSON ({err})") from None
    if not isinstance(value, dict):
        raise ContextMediaError(f"--meta-data {path}: must hold a JSON object")
    return value


def convert_user_data(raw: bytes) -> bytes:
    """The user-data as ``cernvm-context convert`` writes it (normalised MIME)."""
    try:
        from cloudinit_cernvm import userdata  # written apart; needed for --convert only
    except ImportError as err:
        raise ContextMediaError(f"--convert is unavailable: {err}") from None
    try:
        return userdata.normalize(raw)
    except ValueError as err:
        raise ContextMediaError(f"--convert: {err}") from None


def read_network_data(path: str, fmt: str) -> bytes:
    """--network-data: an OpenStack network_data.json (an object with a
    ``links`` list), for the configdrive format only; its bytes as given."""
    if fmt != "configdrive":
        raise ContextMediaError(f"--network-data is for the configdrive format, not {fmt}")
    raw = read_input(path, "--network-data")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise ContextMediaError(f"--network-data {path}: not valid JSON ({err})") from None
    if not isinstance(data, dict) or not isinstance(data.get("links"), list):
        raise ContextMediaError(f"--network-data {path}: not an OpenStack network_data.json "
                                "(an object with a 'links' list)")
    return raw


def read_vendor_data(path: str, option: str) -> bytes:
    """A --vendor-data file as given, once checked: JSON whose top is an object,
    a list or a string (what cloud-init's OpenStack reader takes), at most
    VENDOR_DATA_LIMIT bytes (what the microboot stage takes)."""
    raw = read_input(path, option)
    if len(raw) > VENDOR_DATA_LIMIT:
        raise ContextMediaError(f"{option} {path}: larger than {VENDOR_DATA_LIMIT} bytes")
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise ContextMediaError(f"{option} {path}: not JSON ({err})") from None
    if not isinstance(value, (dict, list, str)):
        raise ContextMediaError(f"{option} {path}: must hold a JSON object, list or string")
    return raw


def _first(meta: Mapping[str, object], *names: str) -> str | None:
    for name in names:
        value = meta.get(name)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
            return str(value)
    return None


def context_from_args(args: argparse.Namespace) -> Context:
    """Read and check every input named by the options; raise on the first problem."""
    from_stdin = [
        option
        for option, value in (
            ("--user-data", args.user_data),
            ("--meta-data", args.meta_data),
            ("--prolog", args.prolog),
            ("--epilog", args.epilog),
            ("--network-data", getattr(args, "network_data", None)),
            ("--vendor-data", args.vendor_data),
            ("--vendor-data2", args.vendor_data2),
            *(("--ssh-key", path) for path in args.ssh_key or []),
            *(("--file", path) for path in getattr(args, "file", None) or []),
        )
        if value == "-"
    ]
    if len(from_stdin) > 1:
        raise ContextMediaError(f"only one input can be stdin, not {' and '.join(from_stdin)}")
    meta = read_meta_data(args.meta_data) if args.meta_data else {}
    user_data = None
    if args.user_data is not None:
        user_data = read_input(args.user_data, "--user-data")
        if args.convert:
            user_data = convert_user_data(user_data)
    elif args.convert:
        raise ContextMediaError("--convert needs --user-data")
    keys: list[str] = []
    for path in args.ssh_key or []:
        raw = read_input(path, "--ssh-key")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ContextMediaError(f"--ssh-key {path}: not an OpenSSH public key") from None
        keys += check_ssh_keys(text, f"--ssh-key {path}")
    instance_id = args.instance_id or _first(meta, "uuid", "instance-id", "VMID")
    hostname = args.hostname or _first(meta, "hostname", "local-hostname", "SET_HOSTNAME")
    return Context(
        instance_id=check_instance_id(instance_id or str(uuid.uuid4())),
        user_data=user_data,
        meta_data=meta,
        ssh_keys=keys,
        hostname=check_hostname(hostname) if hostname else None,
        prolog=read_input(args.prolog, "--prolog") if args.prolog else None,
        epilog=read_input(args.epilog, "--epilog") if args.epilog else None,
        files=read_site_files(getattr(args, "file", None) or []),
        network_data=read_network_data(args.network_data, args.format)
        if getattr(args, "network_data", None) else None,
        vendor_data=(read_vendor_data(args.vendor_data, "--vendor-data")
                     if args.vendor_data else None),
        vendor_data2=(read_vendor_data(args.vendor_data2, "--vendor-data2")
                      if args.vendor_data2 else None),
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``make-iso`` on the verb's sub-parser."""
    parser.add_argument(
        "--format",
        required=True,
        choices=FORMATS,
        help="image layout: hepix, opennebula (label CONTEXT), "
        "configdrive, cloudstack (label config-2), nocloud (label cidata)",
    )
    parser.add_argument("--user-data", metavar="FILE", help="user-data file ('-': stdin)")
    parser.add_argument(
        "--meta-data",
        metavar="FILE",
        help="JSON object merged into meta_data.json (context.sh formats: extra variables)",
    )
    parser.add_argument(
        "--ssh-key",
        metavar="FILE",
        action="append",
        help="OpenSSH public key file (.pub); may be repeated",
    )
    parser.add_argument("--hostname", metavar="NAME", help="host name of the machine")
    parser.add_argument("--instance-id", metavar="ID", help="instance id (default: a fresh uuid)")
    parser.add_argument("--prolog", metavar="FILE", help="prolog.sh for the hepix format")
    parser.add_argument("--epilog", metavar="FILE", help="epilog.sh for the hepix format")
    parser.add_argument(
        "--file",
        metavar="FILE",
        action="append",
        help="a file for the hepix format's scripts: on the CD under its name, listed in"
        " context.sh's FILES; may be repeated",
    )
    parser.add_argument(
        "--network-data",
        metavar="FILE",
        help="OpenStack network_data.json for the configdrive format (static addresses)",
    )
    parser.add_argument(
        "--vendor-data",
        metavar="FILE",
        help="the site's vendor_data.json for the configdrive format (JSON, e.g. "
        '{"cloud-init": "#cloud-config ..."})',
    )
    parser.add_argument(
        "--vendor-data2", metavar="FILE", help="vendor_data2.json for the configdrive format"
    )
    parser.add_argument(
        "--convert",
        action="store_true",
        help="store the user-data converted to MIME multipart (as 'convert' prints it)",
    )
    parser.add_argument("-o", "--output", required=True, metavar="OUT.iso", help="image to write")
    parser.add_argument("--force", action="store_true", help="overwrite OUT.iso if it exists")


#: names the hepix CD holds already, never a --file's
HEPIX_OWN_NAMES = frozenset({"context.sh", "prolog.sh", "epilog.sh", "root.pub"})
_SITE_FILE_NAME = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,254}\Z")


def read_site_files(paths: list[str]) -> dict[str, bytes]:
    """The ``--file`` files by their base names, which the microboot stage keeps.

    The stage keeps only names of ``A-Z a-z 0-9 . _ + -`` not starting with
    ``.`` (names on a CD are untrusted there), so a name it would drop is
    refused here, as is one the CD holds already or a name given twice.
    """
    files: dict[str, bytes] = {}
    for path in paths:
        if path == "-":
            raise ContextMediaError("--file -: a file's name goes on the CD; give a path")
        name = os.path.basename(path)
        if not _SITE_FILE_NAME.match(name):
            raise ContextMediaError(f"--file {path}: the name on the CD may hold only"
                                    " A-Z a-z 0-9 . _ + - and not start with '.'")
        if name in HEPIX_OWN_NAMES or name in files:
            raise ContextMediaError(f"--file {path}: the CD has a file {name} already")
        files[name] = read_input(path, "--file")
    return files


def make_iso(args: argparse.Namespace) -> str:
    """Build the image the options describe; return its path."""
    if not args.force and os.path.lexists(args.output):
        raise ContextMediaError(f"{args.output} exists; use --force to overwrite it")
    ctx = context_from_args(args)
    tree = build_tree(args.format, ctx)
    write_image(tree, LABELS[args.format], args.output, force=args.force)
    return args.output


def run(args: argparse.Namespace) -> int:
    """The ``make-iso`` verb: 0 written, 1 bad input (one line on stderr)."""
    try:
        out = make_iso(args)
    except ContextMediaError as err:
        print(f"cernvm-context make-iso: {err}", file=sys.stderr)
        return 1
    print(f"{out}: {args.format} image, label {LABELS[args.format]}", file=sys.stderr)
    return 0
