"""Helpers of the make-iso tests: run the verb, read images back with real tools."""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

from cloudinit_cernvm.context_image import make_iso as make_iso_verb
from tests.harness import sandbox

TOP = Path(__file__).resolve().parents[2]
FETCH_CONTEXT = TOP / "cloudinit_cernvm" / "microboot" / "fetch-context"

IID = "9b1c7c4e-3f55-4d7a-9a53-2f1f0f7d1c11"
HOSTNAME = "cvm-test.example.org"

#: old-syntax user-data: a script ended by exit, a µCernVM block, an ini section
USER_DATA = (
    b"#!/bin/sh\n"
    b"echo 'context ran' > /tmp/ctx\n"
    b"exit\n"
    b"[ucernvm-begin]\n"
    b"cvmfs_branch=cernvm-prod.cern.ch\n"
    b"[ucernvm-end]\n"
    b"[cernvm]\n"
    b"organisations = atlas\n"
    b"users = panda:atlas:secret\n"
)


def public_key(comment: str = "user@example.org", seed: int = 7) -> str:
    """A well-formed ssh-ed25519 public key line (the blob names its type)."""
    kind = b"ssh-ed25519"
    blob = (
        struct.pack(">I", len(kind)) + kind + struct.pack(">I", 32) + bytes(range(seed, seed + 32))
    )
    line = "ssh-ed25519 " + base64.b64encode(blob).decode("ascii")
    return f"{line} {comment}" if comment else line


def make_iso(*argv: str) -> int:
    """Run the make-iso verb in-process, as the command line dispatches it."""
    parser = argparse.ArgumentParser(prog="cernvm-context make-iso")
    make_iso_verb.add_arguments(parser)
    return make_iso_verb.run(parser.parse_args([str(a) for a in argv]))


def make_standard_image(fmt: str, work: Path, image: Path) -> None:
    """The image of FORMAT from USER_DATA and a fresh key, as most tests use it."""
    (work / "ud").write_bytes(USER_DATA)
    (work / "key.pub").write_text(public_key() + "\n")
    identity = () if fmt == "vsphere" else (  # vSphere's CD: user-data.txt alone
        "--ssh-key", work / "key.pub", "--hostname", HOSTNAME)
    argv = ("--format", fmt, "--user-data", work / "ud", *identity, "--instance-id", IID,
            "-o", image)
    assert make_iso(*argv) == 0


def make_iso_process(*argv: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    """Run the make-iso verb in a fresh Python process (for stdin and exit codes)."""
    code = (
        "import argparse, sys\n"
        "from cloudinit_cernvm.context_image import make_iso as m\n"
        "p = argparse.ArgumentParser(prog='cernvm-context make-iso')\n"
        "m.add_arguments(p)\n"
        "sys.exit(m.run(p.parse_args(sys.argv[1:])))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *[str(a) for a in argv]],
        input=stdin,
        capture_output=True,
        timeout=60,
        cwd=TOP,
        check=False,
    )


def blkid(image: Path) -> dict[str, str]:
    """LABEL, TYPE, ... of an image file, as blkid probes it (no cache)."""
    out = subprocess.run(
        ["blkid", "-p", "-o", "export", str(image)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def extract(image: Path, dest: Path, names: str = "rockridge") -> Path:
    """Extract the whole image with xorriso; ``names`` picks the name records read.

    ``rockridge``: Rock Ridge (what Linux mounts show); ``joliet``: Joliet
    only (what Windows shows); ``iso9660``: neither, the plain ISO 9660 names.
    """
    opts = {
        "rockridge": ["-read_fs", "any"],
        "joliet": ["-read_fs", "norock"],
        "iso9660": ["-read_fs", "ecma119"],
    }[names]
    subprocess.run(
        ["xorriso", *opts, "-osirrox", "on", "-indev", str(image), "-extract", "/", str(dest)],
        capture_output=True,
        timeout=60,
        check=True,
    )
    for root, dirs, _files in os.walk(dest):  # the image is read-only; its copy need not be
        os.chmod(root, 0o755)
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o755)
    return dest


def read_tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root``: relative path -> bytes."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def busybox() -> str:
    found = shutil.which("busybox")
    assert found, "busybox is missing: run tools/bootstrap"
    return found


def fake_sysroot(root: Path) -> Path:
    """A plain KVM machine: QEMU's DMI strings, an ordinary kernel command line."""
    dmi = root / "sys" / "class" / "dmi" / "id"
    dmi.mkdir(parents=True)
    for name, value in {
        "sys_vendor": "QEMU",
        "product_name": "Standard PC (i440FX + PIIX, 1996)",
        "product_uuid": "5a1f3c2e-8b7d-4e6f-9a0b-1c2d3e4f5a6b",
        "chassis_asset_tag": "",
        "bios_vendor": "SeaBIOS",
    }.items():
        (dmi / name).write_text(value + "\n")
    (root / "proc").mkdir()
    (root / "proc" / "cmdline").write_text("console=ttyS0 root=/dev/vda1\n")
    return root


def fetch_context(media: Path, sysroot: Path, seed: Path) -> subprocess.CompletedProcess:
    """Run the microboot entry with ``media`` as its labelled disks."""
    assert FETCH_CONTEXT.is_file(), (
        f"{FETCH_CONTEXT.relative_to(TOP)} is missing: the microboot stage must be merged"
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "CERNVM_MEDIA_DIR": str(media),
        "CERNVM_SYSROOT": str(sysroot),
        # nothing may be fetched: any network attempt goes to a closed port
        "CERNVM_METADATA_URL": "http://127.0.0.1:9",
    }
    return subprocess.run(
        [busybox(), "sh", str(FETCH_CONTEXT), str(seed)],
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )


def cloudinit_run(version: str, script: str, *args: str) -> str:
    """Run ``script`` with an unpacked cloud-init release first on the path; its stdout."""
    env = dict(os.environ, PYTHONPATH=str(sandbox.site_packages(version)))
    return subprocess.run(
        [str(sandbox.python_for(version)), "-c", script, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    ).stdout
