"""The ``make-iso`` verb: its options, its inputs read and checked, the image written.

The options name files; this module reads each of them (bounded, one
line of error for each problem), checks what the formats do not check
themselves (JSON of meta-data, network-data, vendor-data; the names of
``--file`` files) and gathers them into one ``Context``. Then the format's
builder makes the tree and the ISO writer the image. It is apart from the
formats so that they take a checked Context and never an option.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import sys
import uuid
from collections.abc import Mapping

from cloudinit_cernvm import input_file
from cloudinit_cernvm.context_image.context import (
    KIB,
    Context,
    ContextMediaError,
    check_hostname,
    check_instance_id,
    check_ssh_keys,
)
from cloudinit_cernvm.context_image.formats import FORMATS, LABELS, build_tree
from cloudinit_cernvm.context_image.hepix import HEPIX_OWN_NAMES
from cloudinit_cernvm.context_image.iso9660 import write_image

#: Largest vendor_data.json / vendor_data2.json: the microboot stage's cap
#: (OPENSTACK_VD_MAX in microboot/providers/openstack.sh).
VENDOR_DATA_LIMIT = 256 * KIB

_SITE_FILE_NAME = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,254}\Z")


def read_option_file(path: str, what: str, stdin: io.BufferedIOBase | None = None) -> bytes:
    """Read the file an option names (``-``: stdin), at most ``input_file.MAX_INPUT``."""
    try:
        return input_file.read_input(path, input_file.MAX_INPUT, stdin)
    except OSError as err:
        raise ContextMediaError(f"{what} {path}: {err.strerror}") from None
    except input_file.InputTooLarge as err:
        raise ContextMediaError(f"{what} {path}: larger than {err.cap} bytes") from None


def read_meta_data(path: str) -> dict[str, object]:
    """The --meta-data file: a JSON object."""
    raw = read_option_file(path, "--meta-data")
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
    raw = read_option_file(path, "--network-data")
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
    raw = read_option_file(path, option)
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
        user_data = read_option_file(args.user_data, "--user-data")
        if args.convert:
            user_data = convert_user_data(user_data)
    elif args.convert:
        raise ContextMediaError("--convert needs --user-data")
    keys: list[str] = []
    for path in args.ssh_key or []:
        raw = read_option_file(path, "--ssh-key")
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
        prolog=read_option_file(args.prolog, "--prolog") if args.prolog else None,
        epilog=read_option_file(args.epilog, "--epilog") if args.epilog else None,
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
        "configdrive, cloudstack (label config-2), nocloud (label cidata), "
        "vsphere (label user-data: user-data.txt alone)",
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
        files[name] = read_option_file(path, "--file")
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
