"""Boot to contextualized, per provider: this project beside stock cloud-init.

Whole boots of the test VM (``tests/vm/``: Debian's cloud kernel under qemu,
the cloud's DMI strings, its context image on the IDE CD-ROM or its fake
metadata service behind qemu's user network) with cloud-init running *in
the guest*, on the root disk of ``tests/vm/guestroot.py``
(``tests/vm/guestboot.py`` does one boot). For each simulated cloud, in one
run, interleaved, the median of several boots of each of:

ours
    the microboot stage in the initramfs (real ``fetch-context``: it
    recognises the cloud, fetches once, writes the seed), then cloud-init
    26.2 with this project's configuration: the CernVM datasource reads the
    seed, the part-handlers run amiconfig (the stand-in) and record the
    µCernVM settings;
stock
    no microboot stage; cloud-init 26.2 with the datasource list CernVM
    images shipped, ``[NoCloud, ConfigDrive, OpenNebula, AltCloud, OVF,
    MAAS, <the cloud's>, None]``: blkid probes and a mount of the CD-ROM,
    the cloud's local datasource with its own ephemeral DHCP (``dhcpcd``)
    and its metadata crawl, as on a real machine. Addresses that nothing
    forwards never answer (qemu's ``restrict=on``), as unreachable
    link-local addresses behave, with cloud-init's own time-outs.

Both boot the same kernel and initramfs, whose network is up before the
root starts (µCernVM's is: it mounts its root over the network); that
step and the kernel's boot are not timed. Contextualized: the end of
``cloud-init modules --mode final`` (the user-data's runcmd has run; its
marker is checked) and amiconfig's run over the user-data's amiconfig
sections. Ours runs amiconfig within cloud-init (the part-handler); stock,
as CernVM images did, as a service of its own after cloud-init, handed its
sections in a file as if its own search and download cost nothing. The
same release and the same user-data for both.

Times are the guest's own clock, and that clock counts instructions
(``qemu -icount shift=2,sleep=on``: 4 ns each), not the host's seconds: a
boot measures the same whatever else the host does, and runs to a few ms
apart from the previous one, so three boots a side suffice. Idle waits
(metadata answers, DHCP, a time-out) still pass in real time. Under
emulation everything the CPU does is some 30 times slower than on
hardware, waits are not: the network clouds' gains are, if anything,
understated.

    python bench/boot.py [REPEATS [CLOUD...]]    (default 3, every cloud)

A boot takes about 35 s of the host's time, a full run about 25 minutes.

Writes ``bench/results.json`` and ``bench/boot-times.png``, prints a table.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.harness import sandbox  # noqa: E402
from tests.vm import guestboot, guestroot, image  # noqa: E402
from tests.vm.providers import CLOUDS  # noqa: E402

RESULTS = REPO / "bench" / "results.json"
PLOT = REPO / "bench" / "boot-times.png"
#: cloud-init's duration of each datasource it tried, in its log
SEARCH = re.compile(r"finish: init-(?:local|network)/search-\w+: \w+: .*\(duration: ([0-9.]+)s\)")
#: cloud-init's timing of its DHCP client
DHCP_TOOK = re.compile(r"Running \['(?:dhcpcd|dhclient|udhcpc)',[^]]*\] took ([0-9.]+) seconds")
#: the guest's clock: 2**ICOUNT_SHIFT ns per instruction (see the doc above)
ICOUNT_SHIFT = 2
#: the amiconfig handler's own timing
AMICONFIG_TOOK = re.compile(r"amiconfig exited with status \d+ after ([0-9.]+) s")


def seconds_in(pattern: re.Pattern, log: str) -> float:
    return sum(float(m) for m in pattern.findall(log))


def summary(boots: list[guestboot.GuestBoot]) -> dict:
    """Medians of one side's boots of one cloud; most requests and time-outs."""
    med = lambda xs: round(statistics.median(xs))  # noqa: E731
    return {
        "ms": med([b.ms for b in boots]),
        "requests": max(len(b.requests) for b in boots),
        "timeouts": max(b.timeouts for b in boots),
        "contextualized": all(b.ok and b.consumed for b in boots),
        "runs": len(boots),
        "fetch_ms": med([b.fetch_ms or 0 for b in boots]),
        "cloudinit_ms": med([b.cloudinit_ms for b in boots]),
        "search_ms": med([1000 * seconds_in(SEARCH, b.log) for b in boots]),
        "dhcp_ms": med([1000 * seconds_in(DHCP_TOOK, b.log) for b in boots]),
        "amiconfig_ms": med([1000 * seconds_in(AMICONFIG_TOOK, b.log) or b.amiconfig_service_ms
                             for b in boots]),
        "each_ms": [round(b.ms) for b in boots],
    }


def main() -> int:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    wanted = sys.argv[2:] or [n for n, c in CLOUDS.items() if c.source is not None]
    unknown = [n for n in wanted if n not in CLOUDS]
    if unknown:
        print(f"bench/boot.py: unknown cloud {unknown[0]!r}; one of {', '.join(CLOUDS)}",
              file=sys.stderr)
        return 2
    release = sandbox.releases()[-1]
    img = image.build()
    root = guestroot.build(release)
    rows = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-boot-") as tmp:
        top = Path(tmp)
        for name in wanted:
            cloud = CLOUDS[name]
            runs: dict[str, list[guestboot.GuestBoot]] = {s: [] for s in guestboot.SIDES}
            # Interleaved, so that a change of the machine's load falls on both.
            for i in range(repeats):
                for side in guestboot.SIDES:
                    b = guestboot.boot(cloud, side, top / name / f"{side}{i}", image=img,
                                       root=root, icount=ICOUNT_SHIFT)
                    if not b.ok:
                        failed = next((s for s in b.stages if s["returncode"]), None)
                        why = failed["stderr"][-300:] if failed else b.result.serial[-300:]
                        print(f"bench/boot.py: {name} {side}: cloud-init did not finish: {why}",
                              file=sys.stderr)
                    runs[side].append(b)
            o, s = summary(runs["ours"]), summary(runs["stock"])
            row = {"provider": name, "ours_ms": o["ms"], "stock_ms": s["ms"],
                   "ours_requests": o["requests"], "stock_requests": s["requests"],
                   "ours_timeouts": o["timeouts"], "stock_timeouts": s["timeouts"],
                   "ours_contextualized": o["contextualized"],
                   "stock_contextualized": s["contextualized"],
                   "ours_runs": o["runs"], "stock_runs": s["runs"],
                   "ours_microboot_ms": o["fetch_ms"], "ours_cloudinit_ms": o["cloudinit_ms"],
                   "ours_amiconfig_ms": o["amiconfig_ms"],
                   "stock_search_ms": s["search_ms"], "stock_dhcp_ms": s["dhcp_ms"],
                   "stock_amiconfig_ms": s["amiconfig_ms"],
                   "ours_each_ms": o["each_ms"], "stock_each_ms": s["each_ms"]}
            rows.append(row)
            print(f"  {name}: ours {o['ms']} ms, stock {s['ms']} ms", flush=True)
    doc = {
        "cloud_init": release,
        "machine": "qemu TCG (no KVM), 1 vCPU, 512 MiB; Debian's cloud kernel",
        "clock": f"guest clock by instruction count: qemu -icount shift={ICOUNT_SHIFT},sleep=on "
                 f"({2 ** ICOUNT_SHIFT} ns an instruction; idle waits in real time)",
        "contextualized": "end of cloud-init modules --mode final in the guest (runcmd marker "
                          "written) and amiconfig run over the amiconfig sections (ours: within "
                          "cloud-init; stock: as a service after it, handed its sections); "
                          "ours includes the microboot stage",
        "requests": "most metadata requests in one boot; timeouts: most in one boot",
        "split": ("ours_microboot_ms, ours_cloudinit_ms: medians of ours's two parts; "
                  "ours_amiconfig_ms: its amiconfig run, within cloud-init; "
                  "stock_amiconfig_ms: stock's amiconfig service run; stock_search_ms: "
                  "cloud-init's datasource search (probes, mounts, DHCP, metadata requests); "
                  "stock_dhcp_ms: its DHCP client's runs"),
        "stock_datasource_list": [*guestboot.STOCK_LIST, "<the cloud's>", "None"],
        "seconds": round(time.monotonic() - started),
        "providers": rows,
    }
    RESULTS.write_text(json.dumps(doc, indent=2) + "\n")
    print_table(doc)
    plot(rows, release)
    bad = [r["provider"] for r in rows if not r["ours_contextualized"]
           or r["ours_timeouts"] or r["ours_requests"] > CLOUDS[r["provider"]].max_requests]
    if bad:
        print(f"bench/boot.py: targets missed for {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


def print_table(doc: dict) -> None:
    rows = doc["providers"]
    print(f"boot to contextualized in the VM, cloud-init {doc['cloud_init']}, medians "
          f"({rows[0]['ours_runs']} boots of each side per provider)")
    print(f"{'provider':<12} {'ours ms':>8} {'stock ms':>9} {'ratio':>6} {'req ours':>9} "
          f"{'req stock':>10} {'t/o ours':>9} {'t/o stock':>10} {'stock ok':>9}")
    for r in rows:
        ratio = r["stock_ms"] / r["ours_ms"] if r["ours_ms"] else float("nan")
        print(f"{r['provider']:<12} {r['ours_ms']:>8} {r['stock_ms']:>9} {ratio:>5.2f}x "
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
           label="stock: cloud-init, CernVM's former datasource list; amiconfig service")
    for i, r in enumerate(rows):
        notes = [f"{r['stock_timeouts']} time-outs"] if r["stock_timeouts"] else []
        if not r["stock_contextualized"]:
            notes.append("user-data\nnot consumed")
        if notes:
            ax.annotate("\n".join(notes), (i + w / 2, r["stock_ms"] / 1000),
                        ha="center", va="bottom", fontsize=8)
    ax.set_xticks(list(x), names)
    ax.set_ylabel("seconds to contextualized (median; qemu TCG,\ninstruction-counted guest clock)")
    ax.set_title(f"Whole VM boots to contextualized, cloud-init {release}")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2, frameon=False)
    fig.tight_layout()
    fig.savefig(PLOT, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
