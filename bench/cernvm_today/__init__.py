"""The third side of ``bench/boot.py``: the chain a CernVM image runs today.

Three agents search for the same context, one after the other, in one boot
of the test VM (``tests/vm``):

1. in the initramfs, µCernVM's context search and extra-context scan
   (``initramfs/fetch-context``, a model written from what µCernVM's
   ``06context``, ``07extracontext`` and ``13context_epilog`` do: disks,
   a 2 s port probe, then GCE, EC2, OpenStack, CloudStack in turn, curl with
   a 16 s connect time-out, no deadline);
2. cloud-init 26.2 with the datasource list CernVM images ship, the one of
   the stock side (``tests/vm/guestboot.STOCK_LIST`` and the cloud's own);
3. ``amiconfig.sh user`` (``amiconfig.sh``, a model of the real script's
   user step): its own search (EC2, CloudStack, GCE; wget's two tries of
   20 s), then amiconfig (``tests/fakes/amiconfig``), which reads its
   metadata keys from where the search left its URL.

The boots of all three sides go through :func:`boot`, which returns a
:class:`Boot` with what the benchmark reports: the time to contextualized,
each agent's search time, requests and bytes (told apart by their
``User-Agent``) and time-outs, and whether the context was applied.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.fakes.metadata import Instance
from tests.vm import guestboot, providers, qemu
from tests.vm import image as vmimage
from tests.vm.providers import CLOUDS as VM_CLOUDS
from tests.vm.providers import RUNCMD_MARKER, USER_DATA, Cloud

HERE = Path(__file__).resolve().parent
INITRAMFS = HERE / "initramfs"
AMICONFIG_SH = HERE / "amiconfig.sh"
#: where the model of amiconfig.sh lies in the guest root
GUEST_AMICONFIG_SH = "/usr/lib/cernvm-today/amiconfig.sh"
SIDES = ("ours", "stock", "today")
#: µCernVM has no overall deadline: the init's bound on the stage is lifted
TODAY_CMDLINE = "vmtest.cloudinit=1 vmtest.fetch_timeout=1200"
BOOT_TIMEOUT = 900.0
#: the agents, by the User-Agent of their requests
AGENTS = (("microboot", "curl/"), ("cloud-init", "Cloud-Init/"),
          ("amiconfig.sh", "Wget/"), ("amiconfig", "AMIConfig/"))
#: cloud-init's duration of each datasource it tried (as bench/boot.py reads it)
SEARCH = re.compile(r"finish: init-(?:local|network)/search-\w+: \w+: .*\(duration: ([0-9.]+)s\)")
#: where HEPiX's setupContext leaves a context CD's EC2_USER_DATA for amiconfig.sh
HEPIX_AMICONFIG_DIR = "/var/lib/amiconfig/2007-12-15"


def _ec2(name: str, **options: object) -> Cloud:
    return dataclasses.replace(VM_CLOUDS["EC2"], name=name,
                               service_options={"complete": True, **options})


#: The benchmark's cases: the VM tests' clouds, with the rest of each real
#: service's tree (``complete``) so that every side finds what the real one
#: would, and the cases where today's order guesses wrong.
CASES: dict[str, Cloud] = {c.name: c for c in (
    # EC2 as CernVM's AMIs boot: HttpTokens optional (IMDSv1 still answers)
    _ec2("EC2", imds_optional=True),
    # vcycle's GCE contexts give the user-data twice: raw, and base64 as
    # cvm-user-data, which is what amiconfig.sh asks for
    dataclasses.replace(VM_CLOUDS["GCE"], service_options={"instance": Instance(
        attributes={"cvm-user-data": base64.b64encode(USER_DATA).decode()})}),
    dataclasses.replace(VM_CLOUDS["OpenStack"], service_options={"complete": True}),
    VM_CLOUDS["CloudStack"],
    VM_CLOUDS["ConfigDrive"],
    VM_CLOUDS["OpenNebula"],
    VM_CLOUDS["HEPiX"],
    VM_CLOUDS["NoCloud"],
    # EC2 with HttpTokens required: IMDSv1 requests get 401
    _ec2("EC2-IMDSv2"),
    # plain KVM: no context anywhere, nothing answers on 169.254.169.254
    dataclasses.replace(VM_CLOUDS["none"], name="KVM-none"),
)}
#: what ``make bench`` boots: 9 boots a case (3 of each side), 35 to 75 s of
#: the host's time each; the other cases by name (``bench/boot.py 3 CloudStack``)
DEFAULT_CASES = ("EC2", "GCE", "OpenStack", "HEPiX", "EC2-IMDSv2", "KVM-none")


@dataclass
class Agent:
    """One agent's share of a boot."""

    #: ms it spent searching for the context (its own clock in the guest)
    search_ms: float = 0.0
    requests: int = 0
    #: bytes of the answers' bodies
    bytes: int = 0
    timeouts: int = 0


@dataclass
class Boot:
    """One boot of one side, as the benchmark reports it."""

    side: str
    case: str
    #: to contextualized (or to giving up): every agent's part, guest clock
    ms: float
    #: the context was applied: cloud-init's runcmd, µCernVM's settings (the
    #: seed's ucontext; ours: the seed), amiconfig over the amiconfig sections
    contextualized: bool
    agents: dict[str, Agent] = field(default_factory=dict)
    #: one line per part of the context that was not applied
    missing: list[str] = field(default_factory=list)
    #: every stage ran and exited 0
    finished: bool = True
    requests: list = field(default_factory=list)

    @property
    def total_requests(self) -> int:
        return sum(a.requests for a in self.agents.values())

    @property
    def total_bytes(self) -> int:
        return sum(a.bytes for a in self.agents.values())

    @property
    def total_timeouts(self) -> int:
        return sum(a.timeouts for a in self.agents.values())


def image() -> vmimage.VMImage:
    """The test VM whose microboot stage is today's µCernVM search."""
    return vmimage.build(microboot=INITRAMFS)


def agent_of(request) -> str:
    """Which agent made a request the fake recorded (by its User-Agent)."""
    ua = request.headers.get("user-agent", "")
    return next((name for name, prefix in AGENTS if ua.startswith(prefix)), "other")


def count_requests(agents: dict[str, Agent], requests: list) -> None:
    """Add each request and its answer's bytes to its agent."""
    for r in requests:
        a = agents.setdefault(agent_of(r), Agent())
        a.requests += 1
        a.bytes += getattr(r, "size", 0)


def hepix_handover(cloud: Cloud) -> dict[str, bytes] | None:
    """What HEPiX's setupContext leaves amiconfig.sh from a context CD whose
    context.sh has EC2_USER_DATA: the user-data and the root key (else None)."""
    if cloud.media is None:
        return None
    tree = providers.context_tree(cloud)
    text = tree.get("context.sh", b"").decode()
    m = re.search(r"^EC2_USER_DATA=['\"]?([^'\"\n]*)", text, re.M)
    if not m:
        return None
    files = {"user-data": base64.b64decode(m.group(1))}
    if "root.pub" in tree:
        files["meta-data/public-keys/0/openssh-key"] = tree["root.pub"]
    return files


def today_inputs(cloud: Cloud, top: Path) -> Path:
    """The scratch disk's ``/vmtest-in`` of a today boot."""
    vin = top / "vmtest-in"
    if vin.exists():
        shutil.rmtree(vin)
    root = vin / "root"
    cfgd = root / "etc" / "cloud" / "cloud.cfg.d"
    cfgd.mkdir(parents=True)
    (cfgd / "99_vmtest.cfg").write_text(
        "# written by bench/cernvm_today\n"
        + yaml.safe_dump(guestboot.guest_config(cloud, "stock")))
    script = root / GUEST_AMICONFIG_SH.lstrip("/")
    script.parent.mkdir(parents=True)
    shutil.copy(AMICONFIG_SH, script)
    script.chmod(0o755)
    env = dict(guestboot.GUEST_ENV)
    if cloud.name == "CloudStack":
        # cloud-init reads the router from networkd's lease, amiconfig.sh
        # from dhclient's (EL's network scripts keep it there)
        leases = root / "run" / "systemd" / "netif" / "leases"
        leases.mkdir(parents=True)
        (leases / "2").write_text(f"ADDRESS={qemu.GUEST_IP}\nSERVER_ADDRESS={cloud.service_ip}\n")
        dhclient = root / "var" / "lib" / "dhclient"
        dhclient.mkdir(parents=True)
        (dhclient / "dhclient-eth0.leases").write_text(
            f'lease {{\n  interface "eth0";\n  fixed-address {qemu.GUEST_IP};\n'
            f"  option dhcp-server-identifier {cloud.service_ip};\n}}\n")
    handover = hepix_handover(cloud)
    if handover:
        base = root / HEPIX_AMICONFIG_DIR.lstrip("/")
        for name, data in handover.items():
            (base / name).parent.mkdir(parents=True, exist_ok=True)
            (base / name).write_bytes(data)
        env["AMICONFIG_CONTEXT_URL"] = f"file:{HEPIX_AMICONFIG_DIR}"
    jobs = vin / "jobs"
    jobs.mkdir()
    for n, commands in enumerate(guestboot.STAGES, 1):
        (jobs / f"{n}.json").write_text(json.dumps({
            "env": guestboot.GUEST_ENV, "argv0": ["/usr/bin/python3", "/usr/bin/cloud-init"],
            "commands": [list(c) for c in commands]}))
    (jobs / f"{len(guestboot.STAGES) + 1}.json").write_text(json.dumps({
        "env": env, "argv0": ["/bin/bash", GUEST_AMICONFIG_SH], "commands": [["user"]]}))
    return vin


def _stage_results(rec: dict[str, str]) -> tuple[list[dict], dict | None]:
    results: list[dict] = []
    for n in range(1, len(guestboot.STAGES) + 1):
        text = rec.get(f"cloudinit/{n}.json")
        if text:
            results += json.loads(text)
    text = rec.get(f"cloudinit/{len(guestboot.STAGES) + 1}.json")
    return results, (json.loads(text)[0] if text else None)


def _amiconfig_sections(rec: dict[str, str]) -> set[str]:
    """The sections amiconfig (the stand-in) read in its first run ({} if none)."""
    text = rec.get("cloudinit/var-log/fake-amiconfig/run-1/sections.json")
    return set(json.loads(text)) if text else set()


def _today_boot(cloud: Cloud, workdir: Path, img: vmimage.VMImage, root: Path,
                icount: int | None) -> Boot:
    scratch_in = workdir / "scratch-in"
    today_inputs(cloud, scratch_in)
    res, requests = providers.boot(cloud, workdir, cmdline=TODAY_CMDLINE, timeout=BOOT_TIMEOUT,
                                   image=img, root_image=root, scratch_files=scratch_in,
                                   icount=icount)
    rec = res.records
    results, ami = _stage_results(rec)
    stages = [r for r in results if r["args"][:1] in (["init"], ["modules"])]
    log = rec.get("cloudinit/var-log/cloud-init.log", "")
    agents = {name: Agent() for name, _ in AGENTS}
    count_requests(agents, requests)
    agents["microboot"].search_ms = res.fetch_ms or 0
    agents["microboot"].timeouts = res.fetch_stderr.count("ct: timeout ")
    agents["cloud-init"].search_ms = 1000 * sum(float(x) for x in SEARCH.findall(log))
    agents["cloud-init"].timeouts = sum(log.count(w) for w in guestboot.STOCK_TIMEOUT_WORDS)
    ami_err = ami["stderr"] if ami else ""
    m = re.search(r"amiconfig\.sh: retrieve (\d+) ms", ami_err)
    agents["amiconfig.sh"].search_ms = float(m.group(1)) if m else 0.0
    agents["amiconfig.sh"].timeouts = ami_err.count("amiconfig.sh: timeout ")
    ms = (res.fetch_ms or 0) + sum(s["seconds"] for s in stages) * 1000 + (
        ami["seconds"] * 1000 if ami else 0)
    missing = []
    marker = rec.get(f"cloudinit/var-log/{Path(RUNCMD_MARKER).name}", "")
    if marker != "consumed\n":
        missing.append("cloud-init: runcmd not run")
    seed = res.seed or {}
    if b"_UCONTEXT_CVMFS_HTTP_PROXY=" not in seed.get("ucontext", b""):
        missing.append("µCernVM: no settings (ucontext empty)")
    if not {"amiconfig", "cernvm"} <= _amiconfig_sections(rec):
        why = "amiconfig.sh found no user-data" if "aborting" in ami_err else "not run"
        missing.append(f"amiconfig: sections not applied ({why})")
    finished = len(stages) == 4 and all(s["returncode"] == 0 for s in stages)
    return Boot("today", cloud.name, ms, contextualized=not missing, agents=agents,
                missing=missing, finished=finished, requests=requests)


def _project_boot(cloud: Cloud, side: str, workdir: Path, img: vmimage.VMImage, root: Path,
                  icount: int | None) -> Boot:
    b = guestboot.boot(cloud, side, workdir, image=img, root=root, icount=icount)
    agents = {name: Agent() for name, _ in AGENTS}
    count_requests(agents, b.requests)
    if side == "ours":
        agents["microboot"].search_ms = b.fetch_ms or 0
        agents["microboot"].timeouts = b.timeouts
    else:
        agents["cloud-init"].timeouts = b.timeouts
    agents["cloud-init"].search_ms = 1000 * sum(float(x) for x in SEARCH.findall(b.log))
    missing = []
    if not b.consumed:
        missing.append("cloud-init: runcmd not run")
    if side == "ours":
        seed = (b.result.seed or {}) if b.result else {}
        if b"_UCONTEXT_CVMFS_HTTP_PROXY=" not in seed.get("ucontext", b""):
            missing.append("µCernVM: no settings in the seed")
    if not {"amiconfig", "cernvm"} <= _amiconfig_sections(b.result.records if b.result else {}):
        missing.append("amiconfig: sections not applied")
    return Boot(side, cloud.name, b.ms, contextualized=b.ok and not missing, agents=agents,
                missing=missing, finished=b.ok, requests=b.requests)


def boot(cloud: Cloud, side: str, workdir: Path, *, images: dict[str, vmimage.VMImage],
         root: Path, icount: int | None = None) -> Boot:
    """Boot ``cloud`` once as ``side`` (ours, stock, today) to contextualized.

    ``images``: the VM of ours and stock (``"project"``) and of today
    (``"today"``, :func:`image`); ``root``: ``guestroot.build()``.
    """
    if side == "today":
        return _today_boot(cloud, workdir, images["today"], root, icount)
    if side not in guestboot.SIDES:
        raise ValueError(f"side {side!r}: one of {SIDES}")
    return _project_boot(cloud, side, workdir, images["project"], root, icount)
