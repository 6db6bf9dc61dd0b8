"""Build the test VM (kernel + initramfs) from Debian's packages only.

The VM stands for a µCernVM machine at its microboot step: Debian's cloud
kernel, and an initramfs with static busybox, curl (with the shared
libraries it needs, from Debian's packages too), the kernel modules for the
devices the clouds show (IDE CD-ROM, virtio disk and network, vfat and
ISO 9660), this project's microboot stage and a small ``/init``
(``tests/vm/init``) that runs ``fetch-context`` the way µCernVM does.

Everything downloaded is cached under ``$CERNVM_CACHE/vm`` (default
``~/.cache/cloudinit-cernvm/vm``). The initramfs is two concatenated cpio
archives, which the kernel unpacks in turn: a *base* archive keyed by the
package versions and the init scripts, built once, and a small archive with
the microboot stage, rebuilt only when that directory changes.

Usage: ``python -m tests.vm.image [--print]`` builds (or finds) the image and
prints the paths of the kernel and the initramfs.
"""

from __future__ import annotations

import argparse
import fcntl
import gzip
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.harness import sandbox

TOP = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
MICROBOOT = TOP / "cloudinit_cernvm" / "microboot"
#: Where the microboot stage lives inside the initramfs.
GUEST_MICROBOOT = "microboot"

KERNEL_META = "linux-image-cloud-amd64"
BUSYBOX = "busybox-static"
CURL = "curl"
#: Files of the guest side of the harness (hashed into the base archive key).
GUEST_FILES = ("init", "udhcpc.script")

#: Modules the init loads, in this order after their dependencies: the IDE
#: CD-ROM (the cloud kernel has no AHCI), ISO 9660 and vfat for config drives
#: and context CDs, virtio for the scratch disk and the network.
MODULES = (
    "ata_piix", "sr_mod", "isofs", "vfat", "nls_cp437", "nls_utf8", "nls_iso8859_1",
    "virtio_pci", "virtio_blk", "virtio_net",
)

#: initramfs versions (one per microboot contents) kept in the cache.
KEEP_MICROBOOT_VERSIONS = 6

APT_DEPENDS_FLAGS = (
    "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts", "--no-breaks",
    "--no-replaces", "--no-enhances",
)


def cache_dir() -> Path:
    """The VM part of the project's shared download cache."""
    return sandbox.CACHE / "vm"


@dataclass(frozen=True)
class VMImage:
    """A bootable test VM: hand ``kernel`` and ``initrd`` to qemu."""

    kernel: Path
    initrd: Path
    kernel_version: str
    #: package name -> Debian version, for the record (and the cache key).
    packages: dict[str, str]
    #: False when the checkout has no ``microboot/fetch-context`` yet.
    has_fetch_context: bool


class ImageError(RuntimeError):
    """The image could not be built; the message says which step failed."""


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)
    except FileNotFoundError as e:
        raise ImageError(f"{cmd[0]}: not installed (run tools/bootstrap --vm)") from e
    except subprocess.CalledProcessError as e:
        raise ImageError(f"{' '.join(cmd[:3])}...: {e.stderr.strip()[-500:]}") from e


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One builder at a time per cache (worktrees and xdist workers share it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fd:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield


# --- packages ----------------------------------------------------------------

def candidate_versions(names: Iterable[str]) -> dict[str, str]:
    """Debian's candidate version of each package, as apt would install it."""
    out = _run(["apt-cache", "show", "--no-all-versions", *names]).stdout
    versions: dict[str, str] = {}
    for block in out.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if ": " in line and line[0] != " "
        )
        if "Package" in fields:
            versions[fields["Package"]] = fields["Version"]
            if fields["Package"] == KERNEL_META:
                versions["_kernel_depends"] = fields.get("Depends", "")
    return versions


def closure(names: Iterable[str]) -> list[str]:
    """``names`` and every package they depend on (no recommends), sorted."""
    deps = _run(["apt-cache", "depends", *APT_DEPENDS_FLAGS, *names]).stdout
    return sorted({ln.strip() for ln in deps.splitlines()
                   if ln and not ln.startswith((" ", "<"))})


def resolve_packages() -> dict[str, str]:
    """The packages the image is made of, with their versions."""
    meta = candidate_versions([KERNEL_META])
    m = re.search(r"(linux-image-[0-9][^ ,]*-cloud-amd64)", meta.get("_kernel_depends", ""))
    if not m:
        raise ImageError(f"{KERNEL_META}: no versioned kernel package in its Depends")
    kernel_pkg = m.group(1)
    names = [kernel_pkg, BUSYBOX, *closure([CURL])]
    versions = candidate_versions(names)
    versions.pop("_kernel_depends", None)
    missing = [n for n in names if n not in versions]
    if missing:
        raise ImageError(f"no candidate version for: {' '.join(missing)}")
    return dict(sorted(versions.items()))


def download(packages: dict[str, str], debs: Path) -> dict[str, Path]:
    """Each package's .deb, from the cache or fetched once with apt-get."""
    debs.mkdir(parents=True, exist_ok=True)
    files = {n: debs / f"{n}_{v.replace(':', '%3a')}_amd64.deb" for n, v in packages.items()}
    todo = [n for n, f in files.items() if not f.exists()]
    if todo:
        with tempfile.TemporaryDirectory(dir=debs) as tmp:
            os.chmod(tmp, 0o755)  # apt's sandbox user may write here
            _run(["apt-get", "download", "-q", *(f"{n}={packages[n]}" for n in todo)], cwd=tmp)
            for n in todo:
                got = list(Path(tmp).glob(f"{n}_*.deb"))
                if len(got) != 1:
                    raise ImageError(f"apt-get download {n}: no .deb")
                got[0].rename(files[n])
    return files


# --- kernel modules ----------------------------------------------------------

def _modinfo(ko: Path, field: str) -> list[str]:
    """A field of a module's .modinfo strings (``depends=``, ``softdep=``)."""
    data = ko.read_bytes()
    if ko.suffix == ".xz":
        import lzma

        data = lzma.decompress(data)
    vals = re.findall(rb"(?:^|\x00)" + field.encode() + rb"=([^\x00]*)", data)
    return [v.decode() for v in vals]


def module_order(moddir: Path, wanted: Iterable[str]) -> list[Path]:
    """The ``.ko`` files to load for ``wanted``, dependencies first.

    Modules built into the kernel (``modules.builtin``) are left out; a
    wanted module that is neither built in nor shipped is an error.
    """
    index = {}
    for ko in moddir.rglob("*.ko*"):
        index[ko.name.split(".ko")[0].replace("-", "_")] = ko
    builtin = {
        Path(line).name.split(".ko")[0].replace("-", "_")
        for line in (moddir / "modules.builtin").read_text().split()
    }
    order: list[Path] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        name = name.replace("-", "_")
        if name in seen or name in builtin:
            return
        seen.add(name)
        if name not in index:
            raise ImageError(f"kernel module {name}: neither built in nor shipped")
        for deps in _modinfo(index[name], "depends"):
            for dep in filter(None, deps.split(",")):
                visit(dep)
        order.append(index[name])

    for name in wanted:
        visit(name)
    return order


# --- shared libraries --------------------------------------------------------

def library_closure(root: Path, binary: Path) -> list[Path]:
    """The shared libraries ``binary`` needs, all found under ``root``.

    Asks the dynamic loader of the extracted libc6 itself (``--list``), with
    the library path confined to the extracted tree, so the host's libraries
    never stand in for the packaged ones.
    """
    libdirs = [root / d for d in ("lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu")]
    loader = root / "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
    out = _run([str(loader), "--library-path", ":".join(map(str, libdirs)), "--list",
                str(binary)]).stdout
    libs = []
    for line in out.splitlines():
        m = re.search(r"=> (\S+) \(", line)
        if m:
            path = Path(m.group(1))
            if root not in path.parents:
                raise ImageError(f"{binary.name}: {path} is not from the packages")
            libs.append(path)
        elif "not found" in line:
            raise ImageError(f"{binary.name}: {line.strip()}")
    return libs


# --- cpio --------------------------------------------------------------------

def _cpio(tree: Path, out: Path) -> None:
    """``tree`` as a gzipped newc cpio archive (owner root) at ``out``."""
    names = sorted(str(p.relative_to(tree)) for p in tree.rglob("*"))
    proc = subprocess.run(
        ["cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0"], cwd=tree,
        input="\n".join(names).encode() + b"\n", capture_output=True, check=False,
    )
    if proc.returncode:
        raise ImageError(f"cpio: {proc.stderr.decode().strip()}")
    tmp = out.with_suffix(".tmp")
    with gzip.open(tmp, "wb", compresslevel=6) as f:
        f.write(proc.stdout)
    tmp.rename(out)


def _digest(paths: Iterable[Path], base: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(str(p.relative_to(base)).encode() + b"\0")
        if p.is_file():
            h.update(oct(p.stat().st_mode & 0o777).encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


def _build_base(debs: dict[str, Path], kernel_pkg: str, out_dir: Path) -> str:
    """Extract the packages and make the kernel and the base archive."""
    with tempfile.TemporaryDirectory(dir=out_dir.parent) as tmp:
        ex = Path(tmp) / "x"
        for name, deb in debs.items():
            if name != kernel_pkg:
                _run(["dpkg-deb", "-x", str(deb), str(ex)])
        kx = Path(tmp) / "k"
        _run(["dpkg-deb", "-x", str(debs[kernel_pkg]), str(kx)])
        (kver,) = [p.name for p in (kx / "lib/modules").iterdir()]
        moddir = kx / "lib/modules" / kver

        root = Path(tmp) / "root"
        for d in ("bin", "sbin", "usr/bin", "usr/sbin", "lib64", "lib/modules", "etc",
                  "proc", "sys", "dev", "run", "tmp", "mnt/.rw", "var/lib", "root"):
            (root / d).mkdir(parents=True, exist_ok=True)
        shutil.copy(ex / "bin/busybox", root / "bin/busybox")
        os.symlink("busybox", root / "bin/sh")

        curl = ex / "usr/bin/curl"
        shutil.copy(curl, root / "usr/bin/curl")
        for lib in library_closure(ex, curl):
            dest = root / lib.relative_to(ex)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(lib.resolve(), dest)
        loader = ex / "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
        shutil.copy(loader.resolve(), root / "lib64/ld-linux-x86-64.so.2")

        load_list = []
        for ko in module_order(moddir, MODULES):
            dest = root / "lib/modules" / ko.name.removesuffix(".xz")
            if ko.suffix == ".xz":
                import lzma

                dest.write_bytes(lzma.decompress(ko.read_bytes()))
            else:
                shutil.copy(ko, dest)
            load_list.append(dest.name)
        (root / "lib/modules/load").write_text("\n".join(load_list) + "\n")

        shutil.copy(HERE / "init", root / "init")
        os.chmod(root / "init", 0o755)
        shutil.copy(HERE / "udhcpc.script", root / "etc/udhcpc.script")
        os.chmod(root / "etc/udhcpc.script", 0o755)
        # GCE's images resolve the metadata server's name through /etc/hosts
        # too; the VM has no DNS (its network reaches only the test services).
        (root / "etc/hosts").write_text(
            "127.0.0.1 localhost\n169.254.169.254 metadata.google.internal metadata\n"
        )
        (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
        (root / "etc/group").write_text("root:x:0:\n")

        _cpio(root, out_dir / "base.cpio.gz")
        shutil.copy(kx / "boot" / f"vmlinuz-{kver}", out_dir / "vmlinuz")
    (out_dir / "kernel-version").write_text(kver + "\n")
    return kver


def _build_microboot(microboot: Path, out: Path) -> None:
    """The microboot stage, copied whole from the checkout, as its own archive."""
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        root = Path(tmp)
        if microboot.is_dir():
            shutil.copytree(microboot, root / GUEST_MICROBOOT,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            (root / GUEST_MICROBOOT).mkdir()
        _cpio(root, out)


def build(force: bool = False, microboot: Path | None = None) -> VMImage:
    """The VM image, built once per package versions and microboot contents.

    ``microboot`` is the directory copied to ``/microboot`` in the guest
    (default: the checkout's ``cloudinit_cernvm/microboot``).
    """
    microboot = microboot or MICROBOOT
    cache = cache_dir()
    with _locked(cache / ".lock"):
        for attempt in (1, 2):
            packages = resolve_packages()
            kernel_pkg = next(n for n in packages if n.startswith("linux-image-"))
            guest = [HERE / f for f in GUEST_FILES]
            base_key = hashlib.sha256(
                repr(sorted(packages.items())).encode() + repr(MODULES).encode()
                + _digest(guest, HERE).encode()
            ).hexdigest()[:16]
            base_dir = cache / "base" / base_key
            if not force and (base_dir / "base.cpio.gz").exists():
                break
            try:
                debs = download(packages, cache / "debs")
            except ImageError:
                if attempt == 2:
                    raise
                # Package lists older than the archive: refresh them once.
                _run(["apt-get", "update", "-q"])
                continue
            if base_dir.exists():
                shutil.rmtree(base_dir)
            base_dir.mkdir(parents=True)
            _build_base(debs, kernel_pkg, base_dir)
            break

        mb_files = [p for p in microboot.rglob("*") if "__pycache__" not in p.parts] \
            if microboot.is_dir() else []
        mb_key = _digest(mb_files, microboot) if mb_files else "none"
        mb = base_dir / f"microboot-{mb_key}.cpio.gz"
        initrd = base_dir / f"initrd-{mb_key}.img"
        if force or not initrd.exists():
            _build_microboot(microboot, mb)
            tmp = initrd.with_suffix(".tmp")
            with open(tmp, "wb") as f:
                f.write((base_dir / "base.cpio.gz").read_bytes())
                f.write(mb.read_bytes())
            tmp.rename(initrd)
        os.utime(initrd)  # recently used: kept by the clean-up below
        # Earlier microboot versions: keep a few (another run may be using one).
        for pattern in ("initrd-*", "microboot-*"):
            olds = sorted(base_dir.glob(pattern), key=lambda p: p.stat().st_mtime, reverse=True)
            for old in olds[KEEP_MICROBOOT_VERSIONS:]:
                old.unlink(missing_ok=True)
        return VMImage(
            kernel=base_dir / "vmlinuz",
            initrd=initrd,
            kernel_version=(base_dir / "kernel-version").read_text().strip(),
            packages=packages,
            has_fetch_context=(microboot / "fetch-context").is_file(),
        )


def main(argv: list[str] | None = None) -> int:
    """Build the image; print where the kernel and the initramfs are."""
    ap = argparse.ArgumentParser(prog="python -m tests.vm.image",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--force", action="store_true", help="rebuild even if cached")
    args = ap.parse_args(argv)
    try:
        img = build(force=args.force)
    except ImageError as e:
        print(f"build-image: {e}", file=sys.stderr)
        return 1
    print(f"kernel {img.kernel}\ninitrd {img.initrd}\nkernel-version {img.kernel_version}")
    if not img.has_fetch_context:
        print("note: cloudinit_cernvm/microboot/fetch-context does not exist yet")
    return 0


if __name__ == "__main__":
    sys.exit(main())
