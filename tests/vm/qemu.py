"""Boot the test VM once under qemu (TCG) as a given cloud shows itself.

``boot()`` starts qemu with the DMI strings, CD-ROM and metadata addresses
of one simulated cloud, waits (bounded) until the guest powers off, then
reads what the guest left on its scratch disk -- the seed in ``/context``
and the harness records in ``/vmtest`` -- straight from the ext4 image with
``debugfs`` (nothing is mounted on the host).

Networking is qemu's user mode with ``restrict=on``: the guest reaches only
the ``guestfwd`` addresses, each forwarded to a service on the host's
loopback. No packet of the guest leaves the host.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from . import image as vmimage

#: DMI names (as in ``/sys/class/dmi/id``) -> (SMBIOS type, qemu field).
SMBIOS_FIELDS: dict[str, tuple[int, str]] = {
    "bios_vendor": (0, "vendor"),
    "bios_version": (0, "version"),
    "bios_date": (0, "date"),
    "sys_vendor": (1, "manufacturer"),
    "product_name": (1, "product"),
    "product_version": (1, "version"),
    "product_serial": (1, "serial"),
    "product_uuid": (1, "uuid"),
    "product_sku": (1, "sku"),
    "product_family": (1, "family"),
    "board_vendor": (2, "manufacturer"),
    "board_name": (2, "product"),
    "board_version": (2, "version"),
    "board_serial": (2, "serial"),
    "board_asset_tag": (2, "asset"),
    "chassis_vendor": (3, "manufacturer"),
    "chassis_version": (3, "version"),
    "chassis_serial": (3, "serial"),
    "chassis_asset_tag": (3, "asset"),
}

#: The guest's network (qemu user mode): link-local, so that it holds the
#: metadata address. SLIRP_HOST is the gateway and DHCP server.
GUEST_NET = "169.254.0.0/16"
SLIRP_HOST = "169.254.0.2"
SLIRP_DNS = "169.254.0.3"
GUEST_IP = "169.254.0.15"
METADATA_IP = "169.254.169.254"
#: Stands for CloudStack's virtual router: slirp cannot forward its own
#: address, so tests put the router service here and name it to the guest
#: with ``vmtest.dhcp_server=`` (see ``router_cmdline``).
ROUTER_IP = "169.254.0.4"
SCRATCH_MB = 64
BASE_CMDLINE = "console=ttyS0 panic=-1 quiet"


@dataclass
class BootResult:
    """What one boot left behind."""

    #: the guest's serial console (kernel and init messages)
    serial: str
    #: fetch-context's exit status; None when the image has no fetch-context
    #: or the guest never got that far
    exit_status: int | None
    #: fetch-context's stderr, as saved on the scratch disk
    fetch_stderr: str
    #: files of the seed directory (``/mnt/.rw/context``), None if absent
    seed: dict[str, bytes] | None
    #: their permission bits (``0o600``...), the directory's under ``"."``
    seed_modes: dict[str, int]
    #: harness records from ``/mnt/.rw/vmtest`` (name -> text), ``dmi/*`` too
    records: dict[str, str]
    #: guest milestones in ms since the kernel started (init, modules,
    #: scratch, network, probes, fetch-start, fetch-end, poweroff)
    times_ms: dict[str, int]
    #: host seconds from qemu's start to its exit
    wall_s: float
    #: the guest powered off by itself (qemu exited 0 before the time-out)
    powered_off: bool
    timed_out: bool
    #: the qemu command line, for the record
    command: list[str] = field(default_factory=list)
    #: directory holding serial.log, scratch.img and the extracted records
    workdir: Path | None = None

    @property
    def dmi(self) -> dict[str, str]:
        """``/sys/class/dmi/id/*`` as the guest read it."""
        return {k[4:]: v.strip() for k, v in self.records.items() if k.startswith("dmi/")}

    @property
    def fetch_ms(self) -> int | None:
        """Milliseconds fetch-context took, as the guest measured."""
        t = self.times_ms
        if "fetch-start" in t and "fetch-end" in t:
            return t["fetch-end"] - t["fetch-start"]
        return None


class BootError(RuntimeError):
    """qemu could not be started or the scratch disk could not be read."""


def _escape(value: str) -> str:
    """A value for a qemu option list: commas are doubled."""
    return value.replace(",", ",,")


def smbios_args(smbios: Mapping[str, str]) -> list[str]:
    """``-smbios type=N,...`` options for DMI names as in /sys/class/dmi/id."""
    by_type: dict[int, list[str]] = {}
    for name, value in smbios.items():
        if name not in SMBIOS_FIELDS:
            raise ValueError(f"smbios: unknown DMI name {name!r} (one of {sorted(SMBIOS_FIELDS)})")
        t, key = SMBIOS_FIELDS[name]
        by_type.setdefault(t, []).append(f"{key}={_escape(value)}")
    args = []
    for t in sorted(by_type):
        args += ["-smbios", ",".join([f"type={t}", *by_type[t]])]
    return args


def netdev_arg(guestfwd: Iterable[tuple[str, int, int]]) -> str:
    """The user-mode network: restricted, plus one forward per service.

    Each forward runs ``busybox nc 127.0.0.1 HOST_PORT`` per guest
    connection (qemu's ``cmd:`` form), so a guest may open any number of
    connections, and several addresses may share a port. (The chardev form,
    ``-tcp:127.0.0.1:PORT``, opens one connection when qemu starts, and qemu
    7.2 refuses two such forwards on the same guest port.) ``cmd:`` forwards
    must lie inside the guest network, hence a link-local one that holds
    169.254.169.254; the slirp host address itself cannot be forwarded.
    """
    nc = shutil.which("busybox")
    if nc is None:
        raise BootError("busybox: not installed (run tools/bootstrap --vm)")
    parts = ["user", "id=n0", "restrict=on", f"net={GUEST_NET}", f"host={SLIRP_HOST}",
             f"dns={SLIRP_DNS}", f"dhcpstart={GUEST_IP}"]
    for ip, port, host_port in guestfwd:
        if ipaddress.ip_address(ip) not in ipaddress.ip_network(GUEST_NET) or ip in (
                SLIRP_HOST, SLIRP_DNS, GUEST_IP):
            raise ValueError(f"guestfwd {ip}: must be in {GUEST_NET}, other than "
                             f"{SLIRP_HOST}, {SLIRP_DNS} and {GUEST_IP}")
        parts.append(f"guestfwd=tcp:{ip}:{int(port)}-cmd:{nc} nc 127.0.0.1 {int(host_port)}")
    return ",".join(parts)


def router_cmdline(ip: str = ROUTER_IP) -> str:
    """Kernel command line that makes the guest record ``ip`` as DHCP server."""
    return f"vmtest.dhcp_server={ip}"


def make_scratch(path: Path, size_mb: int = SCRATCH_MB, files: Path | None = None) -> None:
    """An ext4 image, as µCernVM's scratch disk is before first boot.

    ``files``: a directory whose contents the image starts with (the
    harness's inputs for the guest, ``/vmtest-in``); else it is empty.
    """
    with open(path, "wb") as f:
        f.truncate(size_mb * 1024 * 1024)
    extra = ["-d", str(files)] if files is not None else []
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "scratch", *extra, str(path)], check=True,
                   capture_output=True)


def _debugfs(img: Path, request: str) -> str:
    proc = subprocess.run(["debugfs", "-R", request, str(img)], capture_output=True, text=True,
                          check=False)
    if proc.returncode:
        raise BootError(f"debugfs {request}: {proc.stderr.strip()}")
    return proc.stdout


def _exists(img: Path, path: str) -> bool:
    proc = subprocess.run(["debugfs", "-R", f"stat {path}", str(img)], capture_output=True,
                          text=True, check=False)
    return "Inode:" in proc.stdout


def _modes(img: Path, path: str) -> dict[str, int]:
    """Permission bits of a directory and its entries, from ``ls -l``."""
    modes: dict[str, int] = {}
    for line in _debugfs(img, f"ls -l {path}").splitlines():
        # "  12  100600 (1)      0      0      42 21-Nov-2025 02:12 user-data"
        m = re.match(r"\s*\d+\s+([0-7]+)\s+\(\d+\)\s+\d+\s+\d+\s+\d+\s+\S+\s+\S+\s+(.+)$", line)
        if m:
            name = m.group(2)
            if name != "..":
                modes[name] = int(m.group(1), 8) & 0o7777
    return modes


def read_scratch(img: Path, out: Path) -> tuple[dict[str, bytes] | None, dict[str, int],
                                                  dict[str, str]]:
    """Seed files, their modes and the harness records from a scratch image."""
    if out.exists():
        shutil.rmtree(out)  # debugfs's rdump does not overwrite
    out.mkdir(parents=True)
    seed: dict[str, bytes] | None = None
    modes: dict[str, int] = {}
    if _exists(img, "/context"):
        _debugfs(img, f"rdump /context {out}")
        seed = {
            str(p.relative_to(out / "context")): p.read_bytes()
            for p in sorted((out / "context").rglob("*")) if p.is_file()
        }
        modes = _modes(img, "/context")
    records: dict[str, str] = {}
    if _exists(img, "/vmtest"):
        _debugfs(img, f"rdump /vmtest {out}")
        for p in sorted((out / "vmtest").rglob("*")):
            if p.is_file():
                records[str(p.relative_to(out / "vmtest"))] = p.read_text(errors="replace")
    return seed, modes, records


def _times(text: str) -> dict[str, int]:
    times = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if value.strip().isdigit():
            times[name] = int(value)
    return times


def boot(
    smbios: Mapping[str, str] | None = None,
    cdrom: Path | None = None,
    guestfwd: Iterable[tuple[str, int, int]] = (),
    kernel_cmdline_extra: str = "",
    timeout: float = 120.0,
    *,
    image: vmimage.VMImage | None = None,
    workdir: Path | None = None,
    memory_mb: int = 512,
    root_image: Path | None = None,
    scratch_files: Path | None = None,
    icount: int | None = None,
) -> BootResult:
    """Boot the test VM once and return what it left behind.

    ``smbios``: DMI strings by their ``/sys/class/dmi/id`` names
    (``sys_vendor``, ``product_name``, ``product_serial``, ``product_uuid``,
    ``chassis_asset_tag``, ...). ``cdrom``: an ISO on the IDE CD-ROM.
    ``guestfwd``: ``(guest_ip, guest_port, host_port)`` forwards to services
    on 127.0.0.1. ``timeout``: seconds before qemu is killed. ``workdir``
    keeps serial log, scratch image and records (else a temporary directory
    that is removed). The image is built (or found in the cache) if not given.
    ``root_image``: the guest root (``guestroot.build()``), attached as a
    second disk whose writes are discarded at exit. ``scratch_files``: a
    directory the scratch disk starts with. ``icount``: the guest's clock
    counts instructions, 2**icount ns each (``-icount shift=N,sleep=on``), so
    that what the guest times is its own work, whatever else the host runs;
    idle waits (the network, a time-out) still pass in real time.
    """
    if shutil.which("qemu-system-x86_64") is None:
        raise BootError("qemu-system-x86_64: not installed (run tools/bootstrap --vm)")
    img = image or vmimage.build()
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="cernvm-vm-")
        workdir = Path(tmp.name)
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        return _boot(img, workdir, smbios or {}, cdrom, list(guestfwd), kernel_cmdline_extra,
                     timeout, memory_mb, root_image, scratch_files, icount)
    finally:
        if tmp is not None:
            tmp.cleanup()


def _boot(img: vmimage.VMImage, workdir: Path, smbios: Mapping[str, str], cdrom: Path | None,
          guestfwd: list[tuple[str, int, int]], extra: str, timeout: float,
          memory_mb: int, root_image: Path | None = None,
          scratch_files: Path | None = None, icount: int | None = None) -> BootResult:
    scratch = workdir / "scratch.img"
    serial = workdir / "serial.log"
    for stale in (scratch, serial):
        stale.unlink(missing_ok=True)
    make_scratch(scratch, files=scratch_files)
    cmd = [
        "qemu-system-x86_64", "-machine", "pc", "-accel", "tcg", "-cpu", "qemu64",
        "-m", str(memory_mb), "-smp", "1", "-nodefaults", "-no-user-config",
        "-display", "none", "-no-reboot", "-serial", f"file:{serial}",
        "-kernel", str(img.kernel), "-initrd", str(img.initrd),
        "-append", f"{BASE_CMDLINE} {extra}".strip(),
        "-drive", f"file={scratch},format=raw,if=virtio",
        "-netdev", netdev_arg(guestfwd), "-device", "virtio-net-pci,netdev=n0",
        *smbios_args(smbios),
    ]
    if icount is not None:
        cmd += ["-icount", f"shift={icount},sleep=on"]
    if root_image is not None:
        # snapshot: the guest writes to a temporary overlay, the image stays as built
        cmd += ["-drive", f"file={_escape(str(root_image))},format=raw,if=virtio,snapshot=on"]
    if cdrom is not None:
        cmd += ["-drive", f"file={_escape(str(cdrom))},format=raw,media=cdrom,if=ide,readonly=on"]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    timed_out = False
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        proc.kill()
        out, _ = proc.communicate()
    wall = time.monotonic() - start
    console = serial.read_text(errors="replace") if serial.exists() else ""
    if proc.returncode and not timed_out and "vmtest:" not in console:
        raise BootError(f"qemu exited {proc.returncode}: {out.decode(errors='replace').strip()}")
    seed, modes, records = read_scratch(scratch, workdir / "out")
    rc = records.get("fetch-context.rc", "").strip()
    return BootResult(
        serial=console,
        exit_status=int(rc) if rc.isdigit() else None,
        fetch_stderr=records.get("fetch-context.stderr", ""),
        seed=seed,
        seed_modes=modes,
        records=records,
        times_ms=_times(records.get("times", "")),
        wall_s=wall,
        powered_off=proc.returncode == 0 and not timed_out,
        timed_out=timed_out,
        command=cmd,
        workdir=workdir,
    )
