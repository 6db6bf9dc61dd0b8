"""The µCernVM fragments (cloudinit_cernvm/microboot/scripts.d) in a µCernVM
initramfs: /init assembled from the fragments as µCernVM's build does it
(rebuild.sh's process_file: RUN lines trimmed, blank and comment lines
dropped), their BUILD lines run to install the stage, then /init run by
busybox sh in a chroot holding only busybox and curl. Test doubles
(tests/microboot/ucernvm/) stand for the runtime before the context
stages, 10root and 13context_epilog, whose file list they follow; a probe
at the end prints what the later stages see."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import FETCH, Machine
from .test_ucernvm_compat import PAC, PAC_ESC, PROXY, PROXY_ESC, TAG, glidein

MICROBOOT = FETCH.parent
FRAGMENTS = MICROBOOT / "scripts.d"
DOUBLES = Path(__file__).resolve().parent / "ucernvm"
#: µCernVM's order (rebuild.sh sorts the names): ours and the doubles
ORDER = [DOUBLES / "00setup", DOUBLES / "04devices", FRAGMENTS / "06context",
         FRAGMENTS / "07extracontext", DOUBLES / "10root", DOUBLES / "13context_epilog",
         FRAGMENTS / "13context_seed", DOUBLES / "99report"]

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                                reason="needs root and unshare for the chroot")


def process_file(path: Path) -> tuple[list[str], list[str]]:
    """(BUILD lines, RUN lines) of a fragment, as µCernVM's build splits it."""
    build: list[str] = []
    run: list[str] = []
    context = ""
    lines = path.read_text().split("\n")
    for line in lines[1:]:    # the first line is the interpreter
        line = line.strip()
        m = re.match(r"#\s*FOR:(\w*)", line)
        if m:
            context = m.group(1)
        elif line and not line.startswith("#"):
            {"BUILD": build, "RUN": run}.get(context, []).append(line)
    return build, run


@pytest.fixture(scope="session")
def initrd_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initramfs tree with busybox (an applet link each) and curl with its
    libraries, nothing else."""
    top = tmp_path_factory.mktemp("initrd")
    busybox, curl = shutil.which("busybox"), shutil.which("curl")
    assert busybox and curl
    (top / "bin").mkdir()
    shutil.copy(busybox, top / "bin/busybox")
    for name in subprocess.run([busybox, "--list"], capture_output=True, text=True,
                               check=True).stdout.split():
        if not (top / "bin" / name).exists():
            (top / "bin" / name).symlink_to("busybox")
    shutil.copy(curl, top / "bin/curl")
    for line in subprocess.run(["ldd", curl], capture_output=True, text=True,
                               check=True).stdout.splitlines():
        m = re.search(r"(/\S+) \(0x", line)
        if m:
            lib = Path(m.group(1))
            dest = top / lib.relative_to("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(lib.resolve(), dest)
    return top


@dataclass
class Boot:
    rc: int
    out: str
    err: str
    root: Path

    @property
    def seen(self) -> dict[str, str]:
        """What the later stages see: the probe's var lines."""
        return dict(ln[4:].split("=", 1) for ln in self.out.splitlines() if ln.startswith("var "))

    @property
    def context(self) -> Path:
        return self.root / "root.rw" / "context"

    def log(self) -> str:
        path = self.root / "var/log/context.log"
        return path.read_text() if path.exists() else ""


def boot(template: Path, top: Path, machine: Machine, *, later: bool = False,
         prepare=None) -> Boot:
    """Build the initramfs under TOP/root (BUILD lines run, /init assembled)
    and run its /init once in a chroot; LATER: the root disk exists."""
    root = top / "root"
    shutil.copytree(template, root, symlinks=True, copy_function=os.link)
    for d in ("tmp", "proc", "dev", "var/log"):
        (root / d).mkdir(parents=True, exist_ok=True)
    machine.build(root / "t")
    if prepare:
        prepare(root)
    build = ["require_versioned_package() { :; }"]
    init = ["#!/bin/sh"]
    for frag in ORDER:
        b, r = process_file(frag)
        if frag.parent == FRAGMENTS:
            build += b
        init += r
    env = {"PATH": "/usr/bin:/bin", "DESTDIR": str(root), "CURL_STRONG_VERSION": "8",
           "CLOUDINIT_CERNVM_MICROBOOT": str(MICROBOOT)}
    subprocess.run(["bash", "-euc", "\n".join(build)], env=env, check=True, timeout=30)
    (root / "init").write_text("\n".join(init) + "\n")
    dev = f"mknod -m 666 {root}/dev/null c 1 3"
    if later:
        dev += f" && mknod {root}/dev/uroot b 7 250"
    script = (f"mount -t proc proc {root}/proc && mount -t tmpfs tmpfs {root}/dev && {dev} && "
              f"exec chroot {root} /bin/env PATH=/bin /bin/sh /init")
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CERNVM_SYSROOT": "/t/root",
           "CERNVM_MEDIA_DIR": "/t/media"}
    # a network namespace of its own: no probe of the stage reaches a real network
    done = subprocess.run(["unshare", "--mount", "--net", "--propagation", "private",
                           "sh", "-c", script],
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    return Boot(done.returncode, done.stdout, done.stderr, root)


def modes(d: Path) -> dict[str, int]:
    return {".": d.stat().st_mode & 0o777,
            **{p.name: p.stat().st_mode & 0o777 for p in d.iterdir()}}


MARK = "/tmp/ucontext-ran"
UD = (b"[ucernvm-begin]\ncvmfs_http_proxy=\"http://a.example.org:3128;DIRECT\"\n"
      b"cvmfs_server=s1.example.org\nresize_rootfs=off\n"
      b"cernvm_path=$(touch " + MARK.encode() + b")\n[ucernvm-end]\n[amiconfig]\nplugins=cernvm\n")
EXTRA = b"[ucernvm-begin]\ncvmfs_tag=extra tag\n[ucernvm-end]\n"
META = {"uuid": "7c1d1e0a-9b6e-4c3f-8a57-0d3c2b1a0f9e", "hostname": "vm1"}


def test_first_boot_leaves_what_the_later_stages_read(initrd_template: Path,
                                                      tmp_path: Path) -> None:
    m = Machine(media={
        "config-2": {"openstack/latest/user_data": UD,
                     "openstack/latest/meta_data.json": json.dumps(META).encode()},
        "BOOT": {"cernvm/extra-user-data": EXTRA, "cernvm/pickup.tar.gz": b"\x1f\x8bpickup"},
    })
    b = boot(initrd_template, tmp_path, m)
    assert b.rc == 0, b.err
    assert "log_info ConfigDrive" in b.out
    seen = b.seen
    assert seen["UCONTEXT_SRC"] == "ConfigDrive"
    assert seen["_UCONTEXT_CVMFS_HTTP_PROXY"] == "http://a.example.org:3128;DIRECT"
    assert seen["_UCONTEXT_CVMFS_SERVER"] == "s1.example.org"
    assert seen["_UCONTEXT_RESIZE_ROOTFS"] == "0"
    assert seen["_UCONTEXT_CERNVM_PATH"] == f"$(touch {MARK})"
    assert seen["_UCONTEXT_CVMFS_TAG"] == "extra tag"    # the extra ucontext, sourced too
    assert not (b.root / MARK.lstrip("/")).exists()       # sourcing ran nothing
    # what 25inject, 97hotfixes, 08clustercontext read in the initramfs
    assert (b.root / "user-data").read_bytes() == UD
    assert (b.root / "extra-user-data").read_bytes() == EXTRA
    assert (b.root / "pickup.tar.gz").read_bytes() == b"\x1f\x8bpickup"
    assert seen["EXTRA_USER_DATA"] == "/extra-user-data"
    assert seen["EXTRA_USER_DATA_INJECTED"] == "/cernvm/extra-user-data"
    assert not (b.root / "glideinwms-user-data").exists()
    # the seed on the scratch disk: 13context_epilog's files, then 13context_seed's
    ctx = b.context
    assert sorted(p.name for p in ctx.iterdir()) == [
        "extra-ucontext", "extra-user-data", "meta-data", "pickup.tar.gz", "source",
        "ucontext", "user-data"]
    assert (ctx / "source").read_text() == "ConfigDrive\n"
    assert (ctx / "user-data").read_bytes() == UD
    assert json.loads((ctx / "meta-data").read_text())["instance-id"] == META["uuid"]
    assert modes(ctx) == {".": 0o700, **{p.name: 0o600 for p in ctx.iterdir()}}
    assert "provider ConfigDrive" in b.log()    # fetch-context's stderr, in context.log


def test_glideinwms_first_boot(initrd_template: Path, tmp_path: Path) -> None:
    ud = glidein(f"-param_CERNVM_CMS_PROXY {PROXY_ESC} -param_CERNVM_CMS_PAC_URLS {PAC_ESC}")
    b = boot(initrd_template, tmp_path, Machine(media={"cdrom": {"user-data.txt": ud}}))
    assert b.rc == 0, b.err
    assert b.seen["UCONTEXT_SRC"] == "vSphere"
    assert b.seen["_UCONTEXT_CVMFS_HTTP_PROXY"] == PROXY
    assert b.seen["_UCONTEXT_CVMFS_PAC_URLS"] == PAC
    assert (b.root / "glideinwms-user-data").read_bytes() == ud
    assert "_UCONTEXT_CVMFS_HTTP_PROXY=" in (b.context / "ucontext").read_text()


def test_azure_udf_first_boot_keeps_azure_iso(initrd_template: Path, tmp_path: Path) -> None:
    image = b"UDF image\0" * 100

    def disk_image(root: Path) -> None:
        (root / "t/media/rd_rdfe_stable.x.img").write_bytes(image)

    m = Machine(media={"rd_rdfe_stable.x": {TAG: b"", "CustomData.bin": b"#cloud-config\n{}\n"}})
    b = boot(initrd_template, tmp_path, m, prepare=disk_image)
    assert b.rc == 0, b.err
    assert b.seen["UCONTEXT_SRC"] == "Azure"
    assert b.seen["AZURE_ISO"] == "/cernvm-seed/azure.iso"
    assert (b.context / "azure.iso").read_bytes() == image
    assert (b.context / "user-data").read_bytes() == b"#cloud-config\n{}\n"
    assert (b.context / "ucontext").read_bytes() == b""    # even empty, as µCernVM left it


def test_no_provider_leaves_nothing_and_the_boot_goes_on(initrd_template: Path,
                                                         tmp_path: Path) -> None:
    b = boot(initrd_template, tmp_path, Machine())
    assert b.rc == 0, b.err
    assert b.seen["UCONTEXT_SRC"] == "(none)" and "log_info (none)" in b.out
    assert not b.context.exists() and not (b.root / "user-data").exists()


def test_later_boot_fetches_nothing_and_sources_the_saved_ucontext(initrd_template: Path,
                                                                   tmp_path: Path) -> None:
    def saved(root: Path) -> None:
        ctx = root / "root.rw/context"
        ctx.mkdir(parents=True)
        (ctx / "source").write_text("ConfigDrive\n")
        (ctx / "ucontext").write_text("_UCONTEXT_CVMFS_SERVER='s 1'\n")

    m = Machine(media={"cdrom": {"user-data.txt": UD}})
    b = boot(initrd_template, tmp_path, m, later=True, prepare=saved)
    assert b.rc == 0, b.err
    assert "Contextualizing" not in b.out and b.log() == ""
    assert b.seen["UCONTEXT_SRC"] == "(none)"
    assert b.seen["_UCONTEXT_CVMFS_SERVER"] == "s 1"
    assert not (b.root / "user-data").exists() and not (b.root / "cernvm-seed").exists()


def test_hepix_site_context_reaches_the_scratch_disk(initrd_template: Path,
                                                      tmp_path: Path) -> None:
    """13context_epilog copies files only: 13context_seed adds hepix/, private."""
    ctx_sh = b"EC2_USER_DATA='W2FtaWNvbmZpZ10K'\nFILES='site.tgz'\n"
    m = Machine(media={"CONTEXT": {"context.sh": ctx_sh, "prolog.sh": b"echo p\n",
                                   "epilog.sh": b"echo e\n", "site.tgz": b"tgz"}})
    b = boot(initrd_template, tmp_path, m)
    assert b.rc == 0, b.err
    assert b.seen["UCONTEXT_SRC"] == "OpenNebula"
    site = b.context / "hepix"
    assert {p.name: p.read_bytes() for p in site.iterdir()} == {
        "context.sh": ctx_sh, "prolog.sh": b"echo p\n", "epilog.sh": b"echo e\n",
        "site.tgz": b"tgz"}
    assert modes(site) == {".": 0o700, **{p.name: 0o600 for p in site.iterdir()}}
    assert modes(b.context)["."] == 0o700
