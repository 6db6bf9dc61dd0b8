"""Benchmark of the microboot stage: milliseconds from start to seed written,
per provider, against loopback metadata services, and the requests made.

Each run is the real fetch-context under busybox sh with only busybox
applets and curl on PATH; the time includes starting the shell. Target:
under 50 ms per provider once the network is up, at most 6 requests (EC2).
"Vac" is EC2 found by the probe (no local evidence): its probe's share, one
TCP connect on loopback, is reported apart ("probe ms"); a machine where
nothing answers loses at most the probe's 1 s bound.

    python bench/microboot.py [REPEATS]
"""

from __future__ import annotations

import base64
import re
import statistics
import sys
import tempfile
from contextlib import nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes import ec2
from tests.fakes.metadata import MetadataService
from tests.fakes.nocloud import SeedServer
from tests.microboot.conftest import Machine, busybox_path, run_fetch

USER_DATA = (b"#!/bin/sh\nexit\n[ucernvm-begin]\nresize_rootfs=off\n[ucernvm-end]\n"
             b"[amiconfig]\nplugins = cernvm\n[cernvm]\nusers = a:b:c\n")
EC2_MAC = ec2.ONE_NIC[0]["mac"]
CONTEXT_SH = b"EC2_USER_DATA='" + base64.b64encode(USER_DATA) + b"'\nROOT_PUBKEY=root.pub\n"
KEY = b"ssh-ed25519 AAAAC3Nza bench@example\n"
GLIDEIN = base64.b64encode(
    b"[glidein_startup]\nargs = -v std -param_CERNVM_CMS_PROXY http.colon,//squid.dot,example"
    b".dot,org.colon,3128 -param_CERNVM_CMS_PAC_URLS http.colon,//wpad.dot,example.dot,org\n"
) + b"#### -cluster 1 -subcluster 0####"

#: provider -> (machine, fake service or None); "ROUTER" marks CloudStack's
CASES: dict[str, tuple[Machine, str | None]] = {
    # EC2's one interface, as the kernel shows it (the fake's instance MAC)
    "EC2": (Machine(dmi={"sys_vendor": "Amazon EC2"}, nics={"eth0": EC2_MAC}), "EC2"),
    "GCE": (Machine(dmi={"product_name": "Google Compute Engine"}), "GCE"),
    "Azure": (Machine(dmi={"chassis_asset_tag": "7783-7084-3265-9085-8269-3286-77"}), "Azure"),
    "OpenStack": (Machine(dmi={"product_name": "OpenStack Nova"}), "OpenStack"),
    "ConfigDrive": (Machine(media={"config-2": {"openstack/latest/user_data": USER_DATA,
                                                "openstack/latest/meta_data.json":
                                                    b'{"uuid": "u-1", "hostname": "h"}'}}),
                    None),
    "CloudStack": (Machine(dmi={"product_name": "CloudStack KVM Hypervisor"}), "CloudStack"),
    "OpenNebula": (Machine(media={"CONTEXT": {"context.sh": CONTEXT_SH, "root.pub": KEY}}),
                   None),
    "vSphere": (Machine(dmi={"sys_vendor": "VMware, Inc."},
                        media={"OVF": {"user-data.txt": USER_DATA}}), None),
    "NoCloud": (Machine(media={"cidata": {"user-data": USER_DATA, "meta-data":
                                          b"instance-id: i-1\nlocal-hostname: h\n"}}), None),
    # the seed URL on the kernel command line: SEED_URL replaced at run time
    "NoCloud-URL": (Machine(cmdline="quiet ds=nocloud-net;s=SEED_URL/seed/"), "NoCloud"),
    "Vac": (Machine(dmi={"sys_vendor": "QEMU", "product_name": "Standard PC"},
                    nics={"eth0": EC2_MAC}), "EC2"),
    # µCernVM's cases: Azure's UDF disk, glideinWMS user-data, extra context
    "Azure-UDF": (Machine(media={"rd_rdfe_stable.1": {
        "E6DA6616-8EC4-48E0-BE93-58CE6ACE3CFB.tag": b"", "CustomData.bin": USER_DATA}}), None),
    "glideinWMS": (Machine(media={"OVF": {"user-data.txt": GLIDEIN}}), None),
    "extra-ctx": (Machine(media={"OVF": {"user-data.txt": USER_DATA},
                                 "BOOT": {"cernvm/extra-user-data": USER_DATA,
                                          "cernvm/pickup.tar.gz": b"\x1f\x8b" + KEY}}), None),
}

NOCLOUD_FILES = {"/seed/user-data": USER_DATA, "/seed/meta-data": b"instance-id: i-2\n"}


def run(repeats: int = 5) -> list[dict]:
    """One row per provider: median and max ms, requests per run, exit status."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-microboot-") as tmp:
        top = Path(tmp)
        bbpath = busybox_path(top / "bin")
        for name, (machine, service) in CASES.items():
            if service == "NoCloud":
                svc_cm = SeedServer(NOCLOUD_FILES)
            else:
                svc_cm = MetadataService(service, USER_DATA) if service else nullcontext()
            with svc_cm as svc:
                url = svc.url if svc else "http://127.0.0.1:9"
                if name == "CloudStack":
                    machine.dhcp_server = url.removeprefix("http://")
                if service == "NoCloud":
                    machine.cmdline = machine.cmdline.replace("SEED_URL", svc.url)
                    url = "http://127.0.0.1:9"
                times, rcs, probe = [], set(), []
                for i in range(repeats):
                    out = run_fetch(bbpath, top / f"{name}-{i}", machine, url)
                    times.append(out.seconds * 1000)
                    rcs.add(out.rc)
                    probe += [int(m) for m in re.findall(r"probe: .* \((\d+) ms\)", out.stderr)]
                requests = len(svc.requests) / repeats if svc else 0
            rows.append({"provider": name, "median_ms": round(statistics.median(times), 1),
                         "max_ms": round(max(times), 1), "requests": requests,
                         "exit": sorted(rcs),
                         "probe_ms": statistics.median(probe) if probe else None})
    return rows


def main() -> int:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    rows = run(repeats)
    print(f"microboot: fetch-context, start to seed written, {repeats} runs each")
    print(f"{'provider':<12} {'median ms':>10} {'max ms':>8} {'requests':>9} {'exit':>5}"
          f" {'probe ms':>9}")
    for r in rows:
        # the stage's clock counts hundredths of a second
        probe = "" if r["probe_ms"] is None else f"{r['probe_ms']:g}" if r["probe_ms"] else "<10"
        print(f"{r['provider']:<12} {r['median_ms']:>10.1f} {r['max_ms']:>8.1f} "
              f"{r['requests']:>9g} {','.join(map(str, r['exit'])):>5} {probe:>9}")
    bad = [r["provider"] for r in rows if r["exit"] != [0]]
    if bad:
        print(f"microboot: no seed for {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
