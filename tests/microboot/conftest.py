"""Fixtures for the microboot stage: a PATH of busybox applets and curl only,
fake system roots, media directories, and a runner for fetch-context."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[2]
FETCH = TOP / "cloudinit_cernvm" / "microboot" / "fetch-context"


def busybox_path(dest: Path) -> Path:
    """DEST/ with a symlink per busybox applet, and curl: nothing else."""
    busybox = shutil.which("busybox")
    curl = shutil.which("curl")
    if busybox is None or curl is None:
        raise RuntimeError("busybox and curl are needed (tools/bootstrap installs them)")
    dest.mkdir(parents=True, exist_ok=True)
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    for name in applets:
        link = dest / name
        if not link.exists():
            link.symlink_to(busybox)
    if not (dest / "curl").exists():
        (dest / "curl").symlink_to(curl)
    return dest


@pytest.fixture(scope="session")
def bbpath(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The PATH directory of every fetch-context run."""
    return busybox_path(tmp_path_factory.mktemp("busybox-bin"))


@dataclass
class Machine:
    """A fake machine: DMI strings, /sys/hypervisor, kernel command line,
    the DHCP server file, and disks (label -> {path: bytes})."""

    dmi: dict[str, str] = field(default_factory=dict)
    hypervisor: dict[str, str] = field(default_factory=dict)
    cmdline: str = "BOOT_IMAGE=/vmlinuz root=/dev/vda1 quiet"
    dhcp_server: str | None = None
    media: dict[str, dict[str, bytes]] = field(default_factory=dict)
    #: network interfaces the kernel shows: name -> MAC (``/sys/class/net``)
    nics: dict[str, str] = field(default_factory=dict)

    def build(self, top: Path) -> tuple[Path, Path]:
        """Write the fake system root and media directory under TOP."""
        root, media = top / "root", top / "media"
        (root / "sys/class/dmi/id").mkdir(parents=True, exist_ok=True)
        (root / "proc").mkdir(parents=True, exist_ok=True)
        media.mkdir(parents=True, exist_ok=True)
        for name, value in self.dmi.items():
            (root / "sys/class/dmi/id" / name).write_text(value + "\n")
        if self.hypervisor:
            (root / "sys/hypervisor").mkdir(parents=True, exist_ok=True)
            for name, value in self.hypervisor.items():
                (root / "sys/hypervisor" / name).write_text(value + "\n")
        (root / "proc/cmdline").write_text(self.cmdline + "\n")
        for name, mac in self.nics.items():
            (root / "sys/class/net" / name).mkdir(parents=True, exist_ok=True)
            (root / "sys/class/net" / name / "address").write_text(mac + "\n")
        if self.dhcp_server is not None:
            (root / "var/lib").mkdir(parents=True, exist_ok=True)
            (root / "var/lib/dhcp-server").write_text(self.dhcp_server + "\n")
        for label, files in self.media.items():
            for rel, data in files.items():
                path = media / label / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                if rel.endswith("/"):
                    path.mkdir(exist_ok=True)
                else:
                    path.write_bytes(data)
        return root, media


@dataclass
class Run:
    """The outcome of one fetch-context run."""

    rc: int
    stdout: str
    stderr: str
    seconds: float
    seed: Path


#: the retry budget of the stage's runs in tests (CERNVM_RETRY_S): three tries
#: over 2 s, so that a test of a broken service stays short; the tests of the
#: retries themselves give theirs on the kernel command line (cernvm.retry=)
TEST_RETRY_S = "2"


def run_fetch(bbpath: Path, top: Path, machine: Machine, url: str = "http://127.0.0.1:9",
              args: list[str] | None = None, timeout: float = 40,
              env: dict[str, str] | None = None) -> Run:
    """Run fetch-context under busybox sh with only busybox and curl on PATH;
    ENV adds to (or, with None values, takes from) its environment."""
    root, media = machine.build(top)
    seed = top / "seed"
    tmp = top / "tmp"
    tmp.mkdir(exist_ok=True)
    base = {"PATH": str(bbpath), "CERNVM_SYSROOT": str(root), "CERNVM_MEDIA_DIR": str(media),
            "CERNVM_METADATA_URL": url, "TMPDIR": str(tmp), "CERNVM_RETRY_S": TEST_RETRY_S}
    for key, value in (env or {}).items():
        if value is None:
            base.pop(key, None)
        else:
            base[key] = value
    start = time.monotonic()
    done = subprocess.run([str(bbpath / "sh"), str(FETCH), *(args or [str(seed)])], env=base,
                          capture_output=True, text=True, timeout=timeout, check=False)
    return Run(done.returncode, done.stdout, done.stderr, time.monotonic() - start, seed)


def is_marker(seed: Path) -> bool:
    """Whether SEED holds the stage's marker (source and failure, no user-data)."""
    return (seed.is_dir() and not (seed / "user-data").exists()
            and {p.name for p in seed.iterdir()} == {"source", "failure"})


def no_seed(seed: Path) -> bool:
    """What a failed run leaves: no directory, or the marker alone."""
    return not seed.exists() or is_marker(seed)


def seed_files(seed: Path) -> dict[str, bytes]:
    """The seed's files and their bytes; asserts the 0700/0600 modes."""
    assert seed.stat().st_mode & 0o777 == 0o700
    out = {}
    for path in sorted(seed.iterdir()):
        assert path.stat().st_mode & 0o777 == 0o600, path
        out[path.name] = path.read_bytes()
    return out


@pytest.fixture
def fetch(bbpath: Path, tmp_path: Path):
    """fetch(machine, url=..., args=..., env=...) -> Run, in a fresh directory."""
    def _fetch(machine: Machine, url: str = "http://127.0.0.1:9",
               args: list[str] | None = None, env: dict[str, str] | None = None) -> Run:
        return run_fetch(bbpath, tmp_path, machine, url, args, env=env)
    assert os.path.exists(FETCH)
    return _fetch
