"""Boot to contextualized, per provider: this project beside stock cloud-init.

For each simulated cloud of the whole-VM tests (``tests/vm/providers.py``),
in one run, the median of several boots of each of:

ours
    the microboot stage (real ``fetch-context`` under busybox sh against the
    loopback fakes, as ``bench/microboot.py``), then real cloud-init with the
    CernVM datasource (``cfg/90_cernvm.cfg``) on the seed it wrote;
stock
    real cloud-init alone with the datasource list CernVM images shipped,
    ``[NoCloud, ConfigDrive, OpenNebula, AltCloud, OVF, MAAS, <the cloud's>,
    None]``. The machine's ``eth0`` is one end of a veth pair; behind the
    other end, in a network namespace nested in the sandbox's, are the
    gateway, the cloud's DHCP server (dnsmasq, one lease as QEMU's user
    network gives it, ``169.254.0.15/16``, router ``169.254.0.2``) and the
    cloud's fake metadata service at the address the cloud uses
    (``metadata.google.internal`` resolves to it). Any other address never
    answers, as real link-local ones do, and cloud-init waits out its own
    time-outs. The boot runs in two sandbox sessions: ``init --local`` with
    ``eth0`` down and unaddressed, as on a machine whose network is not up
    yet, so the cloud's local datasource (``Ec2Local``, ``GCELocal``,
    ``OpenStackLocal``, ``CloudStackLocal``) brings it up with its own
    ephemeral DHCP (``dhcpcd``, first in cloud-init's client order, with
    Debian's ``/etc/dhcpcd.conf``); then the other stages with ``eth0``
    holding the lease, as the system's network service leaves it (that step
    is not timed; CloudStack's router is named in a systemd-networkd lease).
    Config drives and context CDs are given to stock cloud-init as its own
    seed directories (``/var/lib/cloud/seed/config_drive``,
    ``.../opennebula``): no disk is attached in the sandbox, which spares
    stock cloud-init the blkid and mount. Loop devices are not namespaced:
    one attached here would show its ``config-2``/``CONTEXT`` label to the
    host and to every other sandbox's blkid, so the bench does not make one.

Contextualized: the end of ``cloud-init modules --mode final`` (the
user-data's runcmd has run; its marker is checked). Times are the sum of the
four cloud-init stages, plus, for ours, the microboot stage. The same
release (the newest unpacked) and the same user-data for both.

    python bench/boot.py [OURS_REPEATS [STOCK_REPEATS]]    (default 5 and 5)

Ours runs under the same conditions it has in a VM: the microboot stage
brought the network up in the initramfs and its time there is not counted
(nor is the system's DHCP for stock), and cloud-init with the CernVM
datasource reads the seed and needs no network, so its sandbox has only
loopback. ``results.json`` records ours split into the microboot stage and
cloud-init, and stock's time in its DHCP client.

Stock runs are bounded by cloud-init's own time-outs; none is hit on these
clouds (every endpoint cloud-init asks answers, the unanswered ones are
tried only by the other datasources' network probes, which this list
lacks), so a run takes about ten minutes on two loaded cores.

Writes ``bench/results.json`` and ``bench/boot-times.png``, prints a table.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.harness import sandbox  # noqa: E402
from tests.microboot.conftest import Machine as FakeRoot  # noqa: E402
from tests.microboot.conftest import busybox_path, run_fetch  # noqa: E402
from tests.vm import providers, qemu  # noqa: E402
from tests.vm.providers import CLOUDS, RUNCMD_MARKER, USER_DATA, Cloud  # noqa: E402

RESULTS = REPO / "bench" / "results.json"
PLOT = REPO / "bench" / "boot-times.png"
STOCK_LIST = ["NoCloud", "ConfigDrive", "OpenNebula", "AltCloud", "OVF", "MAAS"]
#: what a plain QEMU machine shows (the media clouds)
PLAIN_DMI = {"sys_vendor": "QEMU", "product_name": "Standard PC (i440FX + PIIX, 1996)"}
#: cloud-init's own seed directory for the clouds that come on a disk
STOCK_SEED = {"configdrive": "config_drive", "opennebula": "opennebula", "hepix": "opennebula"}
#: fetch-context's words for a request that got no answer or was retried
OUR_TIMEOUT_WORDS = ("no answer", "trying again", "no time left")
#: cloud-init's timing of its DHCP client, in its log
DHCP_TOOK = re.compile(r"Running \['(?:dhcpcd|dhclient|udhcpc)',[^]]*\] took ([0-9.]+) seconds")
#: cloud-init log words of a request that timed out
STOCK_TIMEOUT_WORDS = ("timed out", "Timeout", "timeout after")


@dataclass
class Run:
    """One boot to contextualized."""

    ms: float
    requests: int
    timeouts: int
    consumed: bool
    #: ours: milliseconds of the microboot stage (the rest is cloud-init's)
    microboot_ms: float = 0.0
    #: stock: milliseconds of cloud-init's ephemeral DHCP (from its log)
    dhcp_ms: float = 0.0


def dmi_of(cloud: Cloud) -> dict[str, str]:
    return cloud.dmi or PLAIN_DMI


def consumed(machine: sandbox.Machine) -> bool:
    marker = machine.dir / "var-log" / Path(RUNCMD_MARKER).name
    return marker.exists() and marker.read_text() == "consumed\n"


def stages_ms(result: sandbox.BootResult) -> float:
    return sum(s.seconds for s in result.stages) * 1000


# --- ours ----------------------------------------------------------------------


def ours(cloud: Cloud, work: Path, bbpath: Path, release: str) -> Run:
    """fetch-context against the loopback fake, then cloud-init on the seed."""
    work.mkdir(parents=True)
    media = {}
    if cloud.media:
        label = "config-2" if cloud.media == "configdrive" else "CONTEXT"
        media = {label: providers.context_tree(cloud)}
    root = FakeRoot(dmi=dmi_of(cloud), media=media)
    with providers.service(cloud) as svc:
        url = svc.url if svc else "http://127.0.0.1:9"
        if cloud.name == "CloudStack":
            root.dhcp_server = url.removeprefix("http://")
        fetch = run_fetch(bbpath, work / "microboot", root, url)
        requests = len(svc.requests) if svc else 0
    if fetch.rc != 0:
        raise RuntimeError(f"{cloud.name}: fetch-context exit {fetch.rc}: {fetch.stderr}")
    timeouts = sum(fetch.stderr.count(w) for w in OUR_TIMEOUT_WORDS)
    machine = sandbox.Machine(work / "machine", release, dmi=dmi_of(cloud))
    shutil.copytree(fetch.seed, machine.seed_dir, dirs_exist_ok=True)
    result = machine.boot()
    if not result.ok:
        raise RuntimeError(f"{cloud.name}: cloud-init failed: {result.stages[-1].stderr[-500:]}")
    return Run(fetch.seconds * 1000 + stages_ms(result), requests, timeouts, consumed(machine),
               microboot_ms=fetch.seconds * 1000)


# --- stock -----------------------------------------------------------------------


#: the cloud side of the machine's link: the gateway that also serves DHCP
GATEWAY = "169.254.0.2"


def cloud_side(cloud: Cloud, work: Path, python: str, *, dhcp: bool) -> list[str]:
    """The machine's ``eth0`` and, behind it, the cloud, all inside the sandbox.

    ``eth0`` is one end of a veth pair; the other end (``net0``) sits in a
    network namespace nested in the sandbox's, held by a ``sleep`` that the
    session's exit trap ends. There the gateway's address, dnsmasq as the
    cloud's DHCP server (with ``dhcp``), and the fake metadata service at
    the cloud's address. Any other address never answers: nobody answers
    ARP for it on the link, and the gateway drops what it would route
    (a blackhole default route, which sends no ICMP), as on a real cloud.
    """
    q = shlex.quote
    lines = [
        "unshare --net sleep 900 & cloudpid=$!",
        # bounded wait until the sleep holds its own network namespace
        'for i in $(seq 100); do [ "$(readlink /proc/$cloudpid/ns/net)" !='
        ' "$(readlink /proc/self/ns/net)" ] && break; sleep 0.02; done',
        'cloud() { nsenter -t "$cloudpid" -n "$@"; }',
        'ip link add eth0 type veth peer name net0 netns "$cloudpid"',
        "cloud ip link set lo up",
        "cloud ip link set net0 up",
        f"cloud ip addr add {GATEWAY}/16 dev net0",
        "cloud ip route add blackhole default",
    ]
    if dhcp:
        lease_log = work / "dnsmasq.log"
        lines += [
            # DHCP as QEMU's user network gives it: one address, the gateway
            # as router, no DNS server (the names below come from /etc/hosts)
            # exec: the job is the server itself, which the session's exit
            # trap ends; timeout bounds it all the same
            f'(exec nsenter -t "$cloudpid" -n timeout 600 dnsmasq --keep-in-foreground '
            f"--conf-file=/dev/null --port=0 "
            f"--interface=net0 --bind-interfaces --user=root --pid-file= "
            f"--dhcp-range={qemu.GUEST_IP},{qemu.GUEST_IP},255.255.0.0,1h "
            f"--dhcp-option=option:router,{GATEWAY} --dhcp-authoritative --no-ping "
            f"--dhcp-leasefile={q(str(work / 'dnsmasq.leases'))} "
            f"--log-dhcp --log-facility={q(str(lease_log))}) &",
        ]
    if cloud.service:
        log = work / "service.log"
        ud = work / "user-data"
        ud.write_bytes(USER_DATA)
        cmd = [python, "-m", "tests.fakes.metadata", "--provider", cloud.service,
               "--host", str(cloud.service_ip), "--port", "80", "--user-data", str(ud),
               "--lifetime", "600"]
        lines += [
            f"cloud ip addr add {cloud.service_ip}/32 dev lo",
            f": > {q(str(log))}.now",
            f"(cd {q(str(REPO))} && exec nsenter -t \"$cloudpid\" -n {shlex.join(cmd)}) "
            f">> {q(str(log))}.now 2>&1 &",
            # bounded wait until it listens
            f"for i in $(seq 100); do grep -q serving {q(str(log))}.now && break;"
            " sleep 0.05; done",
        ]
    return lines


def stock_network(cloud: Cloud, work: Path, python: str, *, local: bool) -> list[str]:
    """The namespace's network for stock cloud-init in one boot stage.

    ``local``: the init-local stage, before the system brings the network
    up: ``eth0`` has no address, so the cloud's local datasource runs its
    own ephemeral DHCP (cloud-init's client and time-outs). After it, as
    the system's DHCP client would have left it: ``eth0`` holding the
    lease's address and default route, and (CloudStack) systemd-networkd's
    lease file naming the virtual router.
    """
    lines = [
        *cloud_side(cloud, work, python, dhcp=local),
        # Names: the cloud's DNS knows metadata.google.internal; other
        # lookups fail at once, as an NXDOMAIN does.
        'echo "nameserver 127.0.0.1" > "$root/etc/resolv.conf"',
        f'echo "{qemu.METADATA_IP} metadata.google.internal metadata" >> "$root/etc/hosts"',
    ]
    if not local:
        lines += ["ip link set eth0 up",
                  f"ip addr add {qemu.GUEST_IP}/16 dev eth0",
                  f"ip route add default via {GATEWAY}"]
        if cloud.name == "CloudStack":
            # The virtual router is the DHCP server, as systemd-networkd records it.
            lines += ['mkdir -p "$root/run/systemd/netif/leases"',
                      f'printf "ADDRESS={qemu.GUEST_IP}\\nSERVER_ADDRESS={cloud.service_ip}\\n'
                      'DOMAINNAME=cloud.example.org\\n" > "$root/run/systemd/netif/leases/2"']
    return lines


def dhcp_time(log: str) -> float:
    """Milliseconds cloud-init's DHCP client ran (its own timing lines in the log)."""
    return 1000 * sum(float(m) for m in DHCP_TOOK.findall(log))


def stock(cloud: Cloud, work: Path, release: str) -> Run:
    """Stock cloud-init with CernVM's former datasource list on the same cloud."""
    work.mkdir(parents=True)
    ds = [*STOCK_LIST, *([cloud.stock_ds] if cloud.stock_ds not in STOCK_LIST else []), "None"]
    machine = sandbox.Machine(
        work / "machine", release, dmi=dmi_of(cloud),
        # parseuser: context.sh is run by sh as root, not through sudo as
        # "nobody" (no sudo in the sandbox; it would only add a process)
        extra_config={"datasource_list": ds,
                      "datasource": {"OpenNebula": {"parseuser": None}}},
        cernvm_config=work / "no-cernvm.cfg",  # absent: stock cloud-init only
        network_setup=stock_network(cloud, work, sys.executable, local=True),
    )
    if cloud.media:
        seed = machine.cloud_dir / "seed" / STOCK_SEED[cloud.media]
        for rel, data in providers.context_tree(cloud).items():
            (seed / rel).parent.mkdir(parents=True, exist_ok=True)
            (seed / rel).write_bytes(data)
    # One boot in two sandbox sessions: init-local before the network is up,
    # then the rest once the system has brought it up (not timed, as it is
    # not cloud-init's work; ours is spared the same).
    local_stage, *rest = sandbox.BOOT_STAGES
    shutil.rmtree(machine.run_dir)
    machine.run_dir.mkdir()
    log = work / "service.log"
    requests = 0
    results = []
    for stages, local in (((local_stage,), True), (tuple(rest), False)):
        machine.network_setup = stock_network(cloud, work, sys.executable, local=local)
        results += machine.run(*stages).stages
        now = Path(f"{log}.now")
        if now.exists():
            text = now.read_text()
            with log.open("a") as f:
                f.write(text)
            requests += sum(1 for ln in text.splitlines()
                            if ln.split(" ", 1)[0] in ("GET", "PUT", "POST", "CONNECT"))
    timeouts = sum(machine.log.count(w) for w in STOCK_TIMEOUT_WORDS)
    ok = all(s.returncode == 0 for s in results) and consumed(machine)
    dhcp_ms = dhcp_time(machine.log)
    return Run(sum(s.seconds for s in results) * 1000, requests, timeouts, ok,
               dhcp_ms=dhcp_ms)


# --- the run ------------------------------------------------------------------------


def median_run(runs: list[Run]) -> dict:
    return {"ms": round(statistics.median(r.ms for r in runs)),
            "requests": max(r.requests for r in runs),
            "timeouts": max(r.timeouts for r in runs),
            "consumed": all(r.consumed for r in runs),
            "microboot_ms": round(statistics.median(r.microboot_ms for r in runs)),
            "cloudinit_ms": round(statistics.median(r.ms - r.microboot_ms for r in runs)),
            "dhcp_ms": round(statistics.median(r.dhcp_ms for r in runs)),
            "runs": len(runs)}


def main() -> int:
    n_ours = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    n_stock = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    release = sandbox.releases()[-1]
    rows = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-boot-") as tmp:
        top = Path(tmp)
        bbpath = busybox_path(top / "bin")
        for cloud in CLOUDS.values():
            if cloud.source is None:
                continue
            # Interleaved, so that a change of the machine's load falls on both.
            o_runs: list[Run] = []
            s_runs: list[Run] = []
            for i in range(max(n_ours, n_stock)):
                if i < n_ours:
                    o_runs.append(ours(cloud, top / cloud.name / f"ours{i}", bbpath, release))
                if i < n_stock:
                    s_runs.append(stock(cloud, top / cloud.name / f"stock{i}", release))
            o, s = median_run(o_runs), median_run(s_runs)
            rows.append({"provider": cloud.name,
                         "ours_ms": o["ms"], "stock_ms": s["ms"],
                         "ours_requests": o["requests"], "stock_requests": s["requests"],
                         "ours_timeouts": o["timeouts"], "stock_timeouts": s["timeouts"],
                         "ours_contextualized": o["consumed"],
                         "stock_contextualized": s["consumed"],
                         "ours_runs": o["runs"], "stock_runs": s["runs"],
                         "ours_microboot_ms": o["microboot_ms"],
                         "ours_cloudinit_ms": o["cloudinit_ms"],
                         "stock_dhcp_ms": s["dhcp_ms"]})
            print(f"  {cloud.name}: ours {o['ms']} ms, stock {s['ms']} ms", flush=True)
    doc = {
        "cloud_init": release,
        "contextualized": "end of cloud-init modules --mode final (runcmd marker written); "
                          "ours includes the microboot stage",
        "requests": "most metadata requests in one boot; timeouts: most in one boot",
        "split": ("ours_microboot_ms + ours_cloudinit_ms: medians of ours's two parts; "
                  "stock_dhcp_ms: median time of stock cloud-init's ephemeral DHCP client run"),
        "stock_datasource_list": [*STOCK_LIST, "<the cloud's>", "None"],
        "seconds": round(time.monotonic() - started),
        "providers": rows,
    }
    RESULTS.write_text(json.dumps(doc, indent=2) + "\n")
    print_table(doc)
    plot(rows, release)
    bad = [r["provider"] for r in rows if not r["ours_contextualized"]
           or r["ours_timeouts"] or r["ours_requests"] > CLOUDS[r["provider"]].max_requests]
    if bad:
        print(f"bench: targets missed for {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


def print_table(doc: dict) -> None:
    print(f"boot to contextualized, cloud-init {doc['cloud_init']}, medians "
          f"(ours {doc['providers'][0]['ours_runs']} runs, stock "
          f"{doc['providers'][0]['stock_runs']} runs per provider)")
    print(f"{'provider':<12} {'ours ms':>8} {'stock ms':>9} {'ratio':>6} {'req ours':>9} "
          f"{'req stock':>10} {'t/o ours':>9} {'t/o stock':>10} {'stock ok':>9}")
    for r in doc["providers"]:
        ratio = r["stock_ms"] / r["ours_ms"] if r["ours_ms"] else float("nan")
        print(f"{r['provider']:<12} {r['ours_ms']:>8} {r['stock_ms']:>9} {ratio:>5.1f}x "
              f"{r['ours_requests']:>9} {r['stock_requests']:>10} {r['ours_timeouts']:>9} "
              f"{r['stock_timeouts']:>10} {'yes' if r['stock_contextualized'] else 'NO':>9}")


def plot(rows: list[dict], release: str) -> None:
    """Bars of ours and stock per provider, into bench/boot-times.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["provider"] for r in rows]
    x = range(len(names))
    fig, ax = plt.subplots(figsize=(9, 4.5))
    w = 0.4
    ax.bar([i - w / 2 for i in x], [r["ours_ms"] / 1000 for r in rows], w,
           label="microboot + CernVM datasource")
    ax.bar([i + w / 2 for i in x], [r["stock_ms"] / 1000 for r in rows], w,
           label="stock cloud-init, CernVM's former datasource list")
    for i, r in enumerate(rows):
        notes = [f"{r['stock_timeouts']} time-outs"] if r["stock_timeouts"] else []
        if not r["stock_contextualized"]:
            notes.append("user-data\nnot consumed")
        if notes:
            ax.annotate("\n".join(notes), (i + w / 2, r["stock_ms"] / 1000),
                        ha="center", va="bottom", fontsize=8)
    ax.set_xticks(list(x), names)
    ax.set_ylabel("seconds to contextualized (median)")
    ax.set_title(f"Boot to end of cloud-init final stage, cloud-init {release}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(PLOT, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
