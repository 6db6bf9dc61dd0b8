"""One whole boot of a simulated cloud with cloud-init running in the guest.

Used by ``bench/boot.py`` and ``tests/vm/test_guestboot.py``. The VM is the
one of the microboot tests (``image.py``) plus the root disk of
``guestroot.py``; after the initramfs (network up, as µCernVM's is), the
init chroots into the root and runs cloud-init's four stages there, on the
guest's own devices, DMI and network. Two ways to boot:

ours
    the microboot stage writes the seed, then cloud-init with this
    project's configuration (``cfg/90_cernvm.cfg``): the CernVM datasource;
stock
    no microboot stage; cloud-init with the datasource list CernVM images
    shipped, ``[NoCloud, ConfigDrive, OpenNebula, AltCloud, OVF, MAAS, <the
    cloud's>, None]``: it probes the disks with blkid, mounts the CD-ROM,
    asks the metadata service itself. Addresses nothing forwards never
    answer (qemu's ``restrict=on`` drops the packets), as unreachable
    link-local addresses behave, and cloud-init waits out its own time-outs.

Both run the same release, the same modules (the sandbox's trimmed lists:
the bench compares finding and reading the context, not the modules every
image runs alike) and the same user-data. The stages run as two jobs,
``init --local`` and then the rest; between them the guest gives eth0 its
address back if a stage took it (the system's network service would).

Both apply the user-data's amiconfig sections: ours through the part-handler
within cloud-init; stock as CernVM images did, with amiconfig as a service of
its own after cloud-init (a third job). Stock's amiconfig is handed its
sections in a file, as if its own search and download had cost nothing.
It reads its metadata keys where amiconfig does by default, the metadata
service (169.254.169.254), on clouds that have one, else a local directory.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from cloudinit_cernvm import content_types, mime_read
from tests.fakes.metadata import Instance
from tests.harness import sandbox

from . import image as vmimage
from . import providers, qemu
from .providers import RUNCMD_MARKER, Cloud

REPO = Path(__file__).resolve().parents[2]
STOCK_LIST = ["NoCloud", "ConfigDrive", "OpenNebula", "AltCloud", "OVF", "MAAS"]
SIDES = ("ours", "stock")
#: the four stages, as systemd starts them: the local one, then the rest
STAGES = ((("init", "--local"),),
          (("init",), ("modules", "--mode", "config"), ("modules", "--mode", "final")))
#: fetch-context's words for a request that got no answer or was retried
OUR_TIMEOUT_WORDS = ("no answer", "trying again", "no time left")
#: cloud-init log words of a request that timed out
STOCK_TIMEOUT_WORDS = ("timed out", "Timeout", "timeout after")
#: qemu's bound on one boot: TCG, four Python processes and their probes
BOOT_TIMEOUT = 600.0
GUEST_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
             "HOME": "/root", "LANG": "C.UTF-8"}
#: where stock's amiconfig service finds the sections (as after its own fetch)
STOCK_AMICONFIG_DATA = "/var/lib/amiconfig/user-data"
#: the guest root's amiconfig (the stand-in, tests/fakes/amiconfig)
AMICONFIG = "/usr/sbin/amiconfig"


@dataclass
class GuestBoot:
    """What one boot to contextualized did, as the guest and the host saw it."""

    side: str
    cloud: str
    #: each cloud-init command run: args, returncode, stdout, stderr, seconds
    results: list[dict]
    #: milliseconds of the microboot stage (ours), None when it did not run
    fetch_ms: int | None
    #: requests the fake metadata service answered
    requests: list = field(default_factory=list)
    #: cloud-init's log in the guest
    log: str = ""
    #: the runcmd marker's contents ("" when the user-data was not consumed)
    marker: str = ""
    #: time-out words counted (fetch-context's for ours, cloud-init's for stock)
    timeouts: int = 0
    result: qemu.BootResult | None = None
    #: stock's amiconfig service run (a result like the others); None for ours
    amiconfig: dict | None = None

    @property
    def stages(self) -> list[dict]:
        """The results of the four boot stages (not of the report commands)."""
        return [r for r in self.results if r["args"][:1] in (["init"], ["modules"])]

    @property
    def cloudinit_ms(self) -> float:
        """The four stages, as the guest timed them."""
        return sum(s["seconds"] for s in self.stages) * 1000

    @property
    def amiconfig_service_ms(self) -> float:
        """Stock's amiconfig service run (ours runs amiconfig within cloud-init)."""
        return self.amiconfig["seconds"] * 1000 if self.amiconfig else 0.0

    @property
    def ms(self) -> float:
        """To contextualized: the microboot stage (ours), cloud-init, and
        stock's amiconfig service."""
        return (self.fetch_ms or 0) + self.cloudinit_ms + self.amiconfig_service_ms

    @property
    def ok(self) -> bool:
        """All four stages ran and exited 0 (and stock's amiconfig)."""
        if self.side == "stock" and (self.amiconfig or {}).get("returncode") != 0:
            return False
        return len(self.stages) == 4 and all(s["returncode"] == 0 for s in self.stages)

    @property
    def consumed(self) -> bool:
        """The user-data's runcmd ran, once."""
        return self.marker == "consumed\n"


def guest_config(cloud: Cloud, side: str) -> dict:
    """``/etc/cloud/cloud.cfg.d/99_vmtest.cfg`` of one side."""
    config = dict(sandbox.SANDBOX_CONFIG)
    if side == "stock":
        config["datasource_list"] = [
            *STOCK_LIST,
            *([cloud.stock_ds] if cloud.stock_ds and cloud.stock_ds not in STOCK_LIST else []),
            "None"]
        # context.sh is parsed by bash as root, not through sudo as
        # "nobody" (no sudo in the guest root; it would only add processes)
        config["datasource"] = {"OpenNebula": {"parseuser": None}}
    return config


def inputs(cloud: Cloud, side: str, top: Path, report: bool = False) -> Path:
    """The scratch disk's ``/vmtest-in``: the root's added files and the jobs.

    ``report``: the last job also asks ``cloud-init status`` and ``query v1``.
    """
    if side not in SIDES:
        raise ValueError(f"side {side!r}: one of {SIDES}")
    vin = top / "vmtest-in"
    if vin.exists():
        shutil.rmtree(vin)
    cfgd = vin / "root" / "etc" / "cloud" / "cloud.cfg.d"
    cfgd.mkdir(parents=True)
    if side == "ours":
        shutil.copy(REPO / "cfg" / "90_cernvm.cfg", cfgd / "90_cernvm.cfg")
    (cfgd / "99_vmtest.cfg").write_text(
        "# written by tests/vm/guestboot.py\n" + yaml.safe_dump(guest_config(cloud, side)))
    if side == "stock":
        data = vin / "root" / STOCK_AMICONFIG_DATA.lstrip("/")
        data.parent.mkdir(parents=True, mode=0o700)
        # a machine without context has no sections to hand over
        data.write_bytes(amiconfig_sections(providers.USER_DATA) if cloud.source else b"")
        data.chmod(0o600)
    if side == "stock" and cloud.name == "CloudStack":
        # The virtual router is the DHCP server, as systemd-networkd records
        # it (slirp cannot stand for the router at its own address).
        leases = vin / "root" / "run" / "systemd" / "netif" / "leases"
        leases.mkdir(parents=True)
        (leases / "2").write_text(f"ADDRESS={qemu.GUEST_IP}\nSERVER_ADDRESS={cloud.service_ip}\n")
    jobs = vin / "jobs"
    jobs.mkdir()
    for n, commands in enumerate(STAGES, 1):
        cmds = [list(c) for c in commands]
        if report and n == len(STAGES):
            cmds += [["status"], ["query", "v1"]]
        (jobs / f"{n}.json").write_text(json.dumps({
            "env": GUEST_ENV, "argv0": ["/usr/bin/python3", "/usr/bin/cloud-init"],
            "commands": cmds}))
    if side == "stock":
        env = {**GUEST_ENV, "AMICONFIG_LOCAL_USER_DATA": STOCK_AMICONFIG_DATA}
        if cloud.service is None:
            # no metadata service: amiconfig's metadata is local, as CernVM's
            # context scripts leave it (its default URL would never answer)
            env["AMICONFIG_CONTEXT_URL"] = f"file:{Path(STOCK_AMICONFIG_DATA).parent}"
        (jobs / f"{len(STAGES) + 1}.json").write_text(json.dumps({
            "env": env, "argv0": [AMICONFIG], "commands": [[]]}))
    return vin


def amiconfig_sections(user_data: bytes) -> bytes:
    """The ``text/amiconfig`` parts of MIME user-data, as amiconfig reads them."""
    return b"".join(p.payload for p in mime_read.parse_parts(user_data)
                    if p.content_type == content_types.AMICONFIG)


def boot(cloud: Cloud, side: str, workdir: Path, *, image: vmimage.VMImage,
         root: Path, report: bool = False, icount: int | None = None) -> GuestBoot:
    """Boot ``cloud`` once, ``side`` ("ours" or "stock"), to contextualized.

    ``icount``: time by instructions (``qemu.boot``), as the bench does.
    """
    scratch_in = workdir / "scratch-in"
    inputs(cloud, side, scratch_in, report=report)
    cloud = without_interfaces(cloud)
    extra = "vmtest.cloudinit=1" + (" vmtest.fetch=off" if side == "stock" else "")
    res, requests = providers.boot(cloud, workdir, cmdline=extra, timeout=BOOT_TIMEOUT,
                                   image=image, root_image=root, scratch_files=scratch_in,
                                   icount=icount)
    rec = res.records
    results: list[dict] = []
    for n in range(1, len(STAGES) + 1):
        text = rec.get(f"cloudinit/{n}.json")
        if text:
            results += json.loads(text)
    amiconfig = None
    if side == "stock":
        text = rec.get(f"cloudinit/{len(STAGES) + 1}.json")
        amiconfig = json.loads(text)[0] if text else None
    log = rec.get("cloudinit/var-log/cloud-init.log", "")
    marker = rec.get(f"cloudinit/var-log/{Path(RUNCMD_MARKER).name}", "")
    if side == "ours":
        timeouts = sum(res.fetch_stderr.count(w) for w in OUR_TIMEOUT_WORDS)
    else:
        timeouts = sum(log.count(w) for w in STOCK_TIMEOUT_WORDS)
    return GuestBoot(side=side, cloud=cloud.name, results=results,
                     fetch_ms=res.fetch_ms if side == "ours" else None,
                     requests=requests, log=log, marker=marker, timeouts=timeouts,
                     result=res, amiconfig=amiconfig)


def without_interfaces(cloud: Cloud) -> Cloud:
    """CLOUD with an EC2 service that lists no network interfaces.

    The guest's root has no network renderer (the harness brings the
    network up, not cloud-init), and from 25.1 on cloud-init's own Ec2
    datasource asks for the renderer while it converts the interfaces:
    stock's local stage would fail on that, not on anything measured here.
    The stage's network-data is booted in ``test_providers`` instead.
    """
    if cloud.service != "EC2":
        return cloud
    options = dict(cloud.service_options)
    inst = options.get("instance")
    options["instance"] = (dataclasses.replace(inst, nics=[]) if isinstance(inst, Instance)
                           else Instance(nics=[]))
    return dataclasses.replace(cloud, service_options=options)


def reports(boot: GuestBoot) -> tuple[str, dict | None]:
    """``cloud-init status`` output and ``query v1`` of a ``report`` boot."""
    status = next((r["stdout"] for r in boot.results if r["args"] == ["status"]), "")
    query = next((r for r in boot.results if r["args"] == ["query", "v1"]), None)
    v1 = json.loads(query["stdout"]) if query and query["returncode"] == 0 else None
    return status, v1
