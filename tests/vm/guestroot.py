"""The test VM's root disk: a Debian system on which real cloud-init runs.

The microboot-stage tests need only the initramfs (``image.py``). To time a
whole boot to *contextualized* the way it happens on a cloud, cloud-init
must run in the guest too: on the guest's own block devices (the CD-ROM
that stock cloud-init probes with blkid and mounts), its own DMI, its own
network (qemu's DHCP, the metadata forwards, the unanswered link-local
addresses). This module builds that root, as an ext4 image labelled
``cvmroot`` that the test init (``tests/vm/init``) mounts and chroots into
when the kernel command line says ``vmtest.cloudinit=1``.

Made of Debian's packages only (the same suite as the kernel): Python and
the libraries cloud-init needs, util-linux's blkid and mount, iproute2,
dhcpcd (cloud-init's first DHCP client), bash (OpenNebula's context
parser) and curl (the benchmark's model of amiconfig.sh); plus the unpacked
cloud-init release under test, this checkout's ``cloudinit_cernvm``, the
amiconfig stand-in at ``/usr/sbin/amiconfig`` and the sandbox's job runner.
Python files are byte-compiled, as an installed system has them (a boot that
compiles every module would time the compiler).

Cached under ``$CERNVM_CACHE/vm/root/``, one image per package versions,
release and checkout contents; rebuilding takes seconds.

Usage: ``python -m tests.vm.guestroot [RELEASE]`` builds (or finds) the
image and prints its path.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.harness import sandbox

from . import image as vmimage

TOP = Path(__file__).resolve().parents[2]
LABEL = "cvmroot"
#: What the guest root is made of (with their dependencies).
ROOT_PACKAGES = (
    "python3", "python3-configobj", "python3-jinja2", "python3-jsonpatch",
    "python3-jsonschema", "python3-netifaces", "python3-oauthlib", "python3-requests",
    "python3-serial", "python3-yaml",
    "util-linux", "mount", "iproute2", "dhcpcd-base", "bash", "coreutils", "sed", "grep",
    "gzip", "findutils", "procps", "dash", "hostname",
    # the benchmark's "CernVM today" amiconfig.sh downloads with it (for wget)
    "curl",
)
#: Pulled in by the packages' maintainer scripts or by tools no boot here
#: uses (dpkg, debconf, perl, PAM, user management): never unpacked.
EXCLUDE = frozenset((
    "usrmerge", "usr-is-merged", "perl", "perl-base", "perl-modules-5.36", "libperl5.36",
    "libfile-find-rule-perl", "libnumber-compare-perl", "libtext-glob-perl", "cdebconf",
    "libdebian-installer4", "libnewt0.52", "libslang2", "libtextwrap1", "install-info",
    "adduser", "passwd", "debconf", "dpkg", "init-system-helpers", "libgdbm6",
    "libgdbm-compat4", "libdb5.3",
))
#: Programs that must run in the guest (their libraries are checked at build).
PROGRAMS = ("usr/bin/python3.11", "sbin/blkid", "bin/mount", "bin/bash", "bin/ip",
            "usr/sbin/dhcpcd", "usr/bin/curl")
#: Where the checkout's files go in the guest.
GUEST_RUNNER = "usr/lib/cernvm-vmtest/runner.py"
GUEST_AMICONFIG = "usr/sbin/amiconfig"
KEEP_IMAGES = 4
#: Free space left in the image for logs, cloud-init's state and the seed copy.
SLACK_MB = 128


def resolve_packages() -> dict[str, str]:
    """The root's packages (closure of ROOT_PACKAGES less EXCLUDE), with versions."""
    names = [n for n in vmimage.closure(ROOT_PACKAGES) if n not in EXCLUDE]
    versions = vmimage.candidate_versions(names)
    missing = [n for n in names if n not in versions]
    if missing:
        raise vmimage.ImageError(f"no candidate version for: {' '.join(missing)}")
    return dict(sorted(versions.items()))


def _checkout_files() -> list[Path]:
    pkg = TOP / "cloudinit_cernvm"
    return sorted([p for p in pkg.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
                  + [TOP / "tests" / "fakes" / "amiconfig",
                     TOP / "tests" / "fakes" / "amiconfig-default.cfg",
                     TOP / "tests" / "harness" / "runner.py", Path(__file__)])


def _python_tag(root: Path) -> str:
    """``3.11`` for the guest's python3.11."""
    found = sorted(p.name for p in (root / "usr/bin").glob("python3.*")
                   if p.name[len("python3."):].isdigit())
    if not found:
        raise vmimage.ImageError("no python3.X in the root packages")
    return found[-1].removeprefix("python")


def _compile(root: Path, tag: str) -> None:
    """Byte-compile the root's Python files as the guest's interpreter would.

    The host's interpreter of the same minor version writes the same
    bytecode; where there is none, the guest compiles on first use (slower,
    but correct).
    """
    host = next((p for p in (sandbox.VENV_PYTHON, Path(sys.executable))
                 if p.exists() and _version_of(p) == tag), None)
    if host is None:
        print(f"guestroot: no host Python {tag}: the guest compiles its modules itself",
              file=sys.stderr)
        return
    dirs = [str(root / f"usr/lib/python{tag}"), str(root / "usr/lib/python3/dist-packages")]
    # Some test data of the standard library is not valid Python: ignore.
    subprocess.run([str(host), "-m", "compileall", "-q", "-s", str(root), "-p", "/", *dirs],
                   capture_output=True, check=False)


def _version_of(python: Path) -> str:
    out = subprocess.run([str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                         capture_output=True, text=True, check=False)
    return out.stdout.strip()


def _populate(root: Path, debs: dict[str, Path], release: str) -> None:
    for deb in debs.values():
        vmimage._run(["dpkg-deb", "-x", str(deb), str(root)])
    for program in PROGRAMS:
        if not (root / program).exists():
            raise vmimage.ImageError(f"guest root: {program} missing from the packages")
        vmimage.library_closure(root, root / program)
    # cloud-init as unpacked from Debian (its files, its /etc/cloud).
    rel = sandbox.RELEASES_DIR / release
    for part in ("usr", "etc"):
        # its bytecode is compiled below, for the paths the guest sees
        shutil.copytree(rel / part, root / part, symlinks=True, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
    (root / "etc/cloud/cloud.cfg.d/README").unlink(missing_ok=True)
    site = root / "usr/lib/python3/dist-packages"
    shutil.copytree(TOP / "cloudinit_cernvm", site / "cloudinit_cernvm",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    runner = root / GUEST_RUNNER
    runner.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(TOP / "tests" / "harness" / "runner.py", runner)
    amiconfig = root / GUEST_AMICONFIG
    shutil.copy(TOP / "tests" / "fakes" / "amiconfig", amiconfig)
    amiconfig.chmod(0o755)
    (root / "etc/amiconfig").mkdir(parents=True, exist_ok=True)  # read as amiconfig does
    shutil.copy(TOP / "tests" / "fakes" / "amiconfig-default.cfg",
                root / "etc/amiconfig/default.cfg")
    for d in ("mnt/.rw", "run", "tmp", "proc", "sys", "dev", "var/log", "var/lib/cloud",
              "var/lib/dhcpcd", "root"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    # The machine's names (no DNS server: other lookups fail at once). GCE's
    # images name the metadata server in /etc/hosts too.
    (root / "etc/hosts").write_text(
        "127.0.0.1 localhost\n169.254.169.254 metadata.google.internal metadata\n")
    (root / "etc/hostname").write_text("cernvm-vmtest\n")
    (root / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\nnogroup:x:65534:\n")
    (root / "etc/machine-id").write_text("")
    _compile(root, _python_tag(root))


def _size_mb(root: Path) -> int:
    total = sum(p.lstat().st_size for p in root.rglob("*"))
    return total // (1024 * 1024) * 2 + SLACK_MB


def build(release: str | None = None, force: bool = False) -> Path:
    """The guest root image for ``release`` (default: the newest unpacked)."""
    release = release or sandbox.releases()[-1]
    cache = vmimage.cache_dir()
    with vmimage._locked(cache / ".lock"):
        for attempt in (1, 2):
            packages = resolve_packages()
            h = hashlib.sha256(repr(sorted(packages.items())).encode() + release.encode())
            for p in _checkout_files():
                h.update(str(p.relative_to(TOP)).encode() + b"\0" + p.read_bytes())
            out = cache / "root" / f"root-{release}-{h.hexdigest()[:16]}.img"
            if out.exists() and not force:
                out.touch()
                return out
            try:
                debs = vmimage.download(packages, cache / "debs")
                break
            except vmimage.ImageError:
                if attempt == 2:
                    raise
                vmimage._run(["apt-get", "update", "-q"])
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
            root = Path(tmp) / "root"
            root.mkdir()
            _populate(root, debs, release)
            img = Path(tmp) / "root.img"
            with open(img, "wb") as f:
                f.truncate(_size_mb(root) * 1024 * 1024)
            vmimage._run(["mkfs.ext4", "-q", "-F", "-L", LABEL, "-d", str(root), str(img)])
            img.rename(out)
        olds = sorted(out.parent.glob("root-*.img"), key=lambda p: p.stat().st_mtime,
                      reverse=True)
        for old in olds[KEEP_IMAGES:]:
            old.unlink(missing_ok=True)
        return out


def main(argv: list[str]) -> int:
    """Build the root image (or find it) and print its path."""
    try:
        print(build(argv[0] if argv else None))
    except vmimage.ImageError as e:
        print(f"guestroot: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
