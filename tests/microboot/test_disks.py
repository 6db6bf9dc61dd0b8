"""Disk labels read from the disks themselves, as in an initramfs without
blkid: /proc/partitions names the disks, and fetch-context reads the ISO 9660
volume descriptor or the FAT boot sector of each (CERNVM_SYSROOT/dev/NAME
stands for /dev/NAME)."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest

from cloudinit_cernvm.context_image import iso9660

from .conftest import FETCH

SECTOR = 512


def fat_image(label: bytes, kind: str) -> bytes:
    """The boot sector of a FAT12/16 or FAT32 disk labelled ``label`` (11 bytes)."""
    boot = bytearray(64 * SECTOR)
    boot[0:3] = b"\xeb\x3c\x90"
    boot[3:11] = b"MSWIN4.1"
    if kind == "FAT32":
        boot[71:82] = label
        boot[82:90] = b"FAT32   "
    else:
        boot[43:54] = label
        boot[54:62] = kind.encode().ljust(8)
    boot[510:512] = b"\x55\xaa"
    return bytes(boot)


def iso_image(label: str) -> bytes:
    """An ISO 9660 image labelled ``label`` holding a context.sh."""
    out = io.BytesIO()
    iso9660.write_iso({"context.sh": b"VMID='1'\n"}, label, out)
    return out.getvalue()


def detect(bbpath: Path, top: Path, disks: dict[str, bytes]) -> subprocess.CompletedProcess:
    """``fetch-context --detect`` on a machine whose disks are ``disks``."""
    path = top / "bin"
    shutil.copytree(bbpath, path, symlinks=True)
    (path / "blkid").unlink(missing_ok=True)   # the /proc/partitions way
    root = top / "root"
    (root / "proc").mkdir(parents=True)
    (root / "dev").mkdir()
    (root / "proc/cmdline").write_text("quiet\n")
    lines = ["major minor  #blocks  name", ""]
    for n, (name, data) in enumerate(disks.items()):
        (root / "dev" / name).write_bytes(data)
        lines.append(f" 254 {n:8d} {len(data) // 1024:9d} {name}")
    (root / "proc/partitions").write_text("\n".join(lines) + "\n")
    return subprocess.run([str(path / "sh"), str(FETCH), "--detect"],
                          env={"PATH": str(path), "CERNVM_SYSROOT": str(root),
                               "TMPDIR": str(top)},
                          capture_output=True, text=True, timeout=30, check=False)


@pytest.mark.parametrize("disk", [
    pytest.param(lambda: iso_image("CONTEXT"), id="iso9660"),
    pytest.param(lambda: fat_image(b"CONTEXT    ", "FAT12"), id="fat12"),
    pytest.param(lambda: fat_image(b"CONTEXT    ", "FAT16"), id="fat16"),
    pytest.param(lambda: fat_image(b"CONTEXT\0\0\0\0", "FAT32"), id="fat32-nul-padded"),
])
def test_a_labelled_disk_is_found_among_others(disk, bbpath: Path, tmp_path: Path) -> None:
    disks = {"vda": bytes(64 * 1024), "sr0": disk(), "vdb": bytes(40 * 1024)}
    out = detect(bbpath, tmp_path, disks)
    want = 'OpenNebula\ta disk labelled "CONTEXT"\n'
    assert (out.returncode, out.stdout) == (0, want), out.stderr


def test_the_label_is_read_as_written(bbpath: Path, tmp_path: Path) -> None:
    # Neither blanks inside a label nor its case are lost.
    out = detect(bbpath, tmp_path, {"sr0": iso_image("rd_rdfe_stable x")})
    assert out.stdout == 'Azure\ta disk labelled "rd_rdfe_stable x"\n', out.stderr


@pytest.mark.parametrize("disks", [
    pytest.param({"vda": bytes(64 * 1024)}, id="unlabelled"),
    pytest.param({"vda": fat_image(b"NO NAME    ", "FAT16")}, id="fat-no-name"),
    pytest.param({"vda": fat_image(b"CONTEXT    ", "NTFS ")}, id="not-fat"),
    pytest.param({"loop0": iso_image("CONTEXT"), "ram0": iso_image("CONTEXT")},
                 id="loop-and-ram-skipped"),
    pytest.param({"vda": b""}, id="empty"),
])
def test_no_labelled_disk_no_provider(disks: dict[str, bytes], bbpath: Path,
                                      tmp_path: Path) -> None:
    out = detect(bbpath, tmp_path, disks)
    assert (out.returncode, out.stdout) == (1, ""), out.stderr
