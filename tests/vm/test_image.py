"""The test VM image: built from Debian's packages, cached, microboot copied."""

from __future__ import annotations

import subprocess
import zlib
from pathlib import Path

from . import image


def _cpio_names(data: bytes) -> set[str]:
    """Member names of the concatenated gzipped cpio archives of an initramfs."""
    names: set[str] = set()
    while data:
        d = zlib.decompressobj(wbits=31)  # one gzip member: one cpio archive
        raw = d.decompress(data)
        data = d.unused_data
        proc = subprocess.run(["cpio", "-t", "--quiet"], input=raw, capture_output=True,
                              check=True)
        names.update(proc.stdout.decode().split())
    return names


def test_image_is_made_of_debian_packages(vm_image: image.VMImage) -> None:
    assert vm_image.kernel.read_bytes()[0x202:0x206] == b"HdrS"  # a bzImage
    assert vm_image.kernel_version.endswith("-cloud-amd64")
    pkgs = vm_image.packages
    assert f"linux-image-{vm_image.kernel_version}" in pkgs
    assert {"busybox-static", "curl", "libcurl4", "libc6"} <= set(pkgs)

    names = _cpio_names(vm_image.initrd.read_bytes())
    assert {"init", "bin/busybox", "usr/bin/curl", "lib64/ld-linux-x86-64.so.2",
            "usr/lib/x86_64-linux-gnu/libcurl.so.4", "lib/modules/load",
            "etc/udhcpc.script", "microboot"} <= names
    for module in ("ata_piix.ko", "sr_mod.ko", "isofs.ko", "virtio_net.ko", "virtio_blk.ko"):
        assert f"lib/modules/{module}" in names


def test_module_order_puts_dependencies_first(tmp_path: Path) -> None:
    moddir = tmp_path / "lib/modules/6.1.0-test"
    (moddir / "kernel").mkdir(parents=True)
    (moddir / "modules.builtin").write_text("kernel/fs/ext4/ext4.ko\n")
    for name, deps in {"a": "b,c", "b": "c", "c": "", "d": "ext4"}.items():
        (moddir / "kernel" / f"{name}.ko").write_bytes(
            b"\x7fELF junk\x00license=GPL\x00depends=" + deps.encode() + b"\x00vermagic=x\x00")
    order = [p.stem for p in image.module_order(moddir, ["a", "d"])]
    assert order == ["c", "b", "a", "d"]


def test_image_cache_rebuilds_only_the_microboot_archive(tmp_path: Path,
                                                         vm_image: image.VMImage) -> None:
    base = vm_image.initrd.parent / "base.cpio.gz"
    before = base.stat().st_mtime_ns
    mb = tmp_path / "microboot"
    mb.mkdir()
    (mb / "fetch-context").write_text("#!/bin/sh\nexit 1\n")
    (mb / "fetch-context").chmod(0o755)
    other = image.build(microboot=mb)
    assert other.has_fetch_context
    assert other.kernel == vm_image.kernel
    assert other.initrd != vm_image.initrd
    assert base.stat().st_mtime_ns == before
    assert "microboot/fetch-context" in _cpio_names(other.initrd.read_bytes())
    again = image.build(microboot=mb)
    assert again.initrd == other.initrd
