"""Boot to contextualized, per provider: this project, stock cloud-init, and
the chain CernVM images run today.

Whole boots of the test VM (``tests/vm/``: Debian's cloud kernel under qemu,
the cloud's DMI strings, its context image on the IDE CD-ROM or its fake
metadata service behind qemu's user network) with cloud-init running *in
the guest*, on the root disk of ``tests/vm/guestroot.py``. For each case,
in one run, interleaved, the median of several boots of each of:

ours
    the microboot stage in the initramfs (real ``fetch-context``: it
    recognises the cloud, fetches once, writes the seed), then cloud-init
    26.2 with this project's configuration: the CernVM datasource reads the
    seed, the part-handlers run amiconfig (the stand-in) and record the
    µCernVM settings;
stock
    no microboot stage; cloud-init 26.2 with the datasource list CernVM
    images ship, ``[NoCloud, ConfigDrive, OpenNebula, AltCloud, OVF, MAAS,
    <the cloud's>, None]``, then amiconfig as a service of its own, handed
    its sections in a file as if its own search and download cost nothing
    (the comparison of the datasources alone);
today
    the whole chain of a CernVM image today (``bench/cernvm_today``): in the
    initramfs a model of µCernVM's context search and extra-context scan
    (disks, a 2 s port probe, GCE, EC2, OpenStack, CloudStack in turn, 16 s
    connect time-outs, no deadline), then the same cloud-init as stock, then
    a model of ``amiconfig.sh user``, which searches and downloads the
    user-data again and runs amiconfig, which reads its metadata keys from
    the service.

All three boot the same kernel and root disk, whose network is up before
the root starts (µCernVM's is); that step and the kernel's boot are not
timed. Contextualized: cloud-init's ``runcmd`` ran (its marker), the
µCernVM settings were had (the seed's ``ucontext``; ours and today), and
amiconfig ran over the user-data's amiconfig sections. A boot that ends
without one of them is reported as such, with the time it took to give up,
never as a success.

Times are the guest's own clock, and that clock counts instructions
(``qemu -icount shift=2,sleep=on``: 4 ns each), not the host's seconds: a
boot measures the same whatever else the host does. Idle waits (metadata
answers, DHCP, a time-out) still pass in real time.

    python bench/boot.py [REPEATS [CASE...]]    (default 3, bench/cernvm_today's DEFAULT_CASES)

A boot takes 35 to 75 s of the host's time (it depends on the host's load,
not the figures). The rows of the cases booted replace those of the same
cases in ``bench/results.json``; other rows stay, so that a run may boot
only some cases. Writes ``bench/results.json`` and ``bench/boot-times.png``,
prints a table.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# bench/ is the script's directory (where "bench" is bench.py)
import cernvm_today as ct  # noqa: E402

from tests.harness import sandbox  # noqa: E402
from tests.vm import guestboot, guestroot, image  # noqa: E402

RESULTS = REPO / "bench" / "results.json"
PLOT = REPO / "bench" / "boot-times.png"
#: the guest's clock: 2**ICOUNT_SHIFT ns per instruction (see the doc above)
ICOUNT_SHIFT = 2
LABELS = {"ours": "ours: microboot stage + CernVM datasource",
          "stock": "stock: cloud-init, CernVM's datasource list; amiconfig handed its data",
          "today": "CernVM today: µCernVM search, cloud-init, amiconfig.sh's own search"}


def _med(xs: list[float]) -> int:
    return round(statistics.median(xs))


def summary(boots: list[ct.Boot]) -> dict:
    """One side's boots of one case: medians, the worst time-outs, the context."""
    agents = {}
    for name in boots[0].agents:
        each = [b.agents[name] for b in boots]
        agents[name] = {"search_ms": _med([a.search_ms for a in each]),
                        "requests": _med([a.requests for a in each]),
                        "bytes": _med([a.bytes for a in each]),
                        "timeouts": max(a.timeouts for a in each)}
    missing = sorted({line for b in boots for line in b.missing})
    return {
        "ms": _med([b.ms for b in boots]),
        "each_ms": [round(b.ms) for b in boots],
        "contextualized": all(b.contextualized for b in boots),
        "missing": missing,
        "finished": all(b.finished for b in boots),
        "requests": _med([b.total_requests for b in boots]),
        "bytes": _med([b.total_bytes for b in boots]),
        "timeouts": max(b.total_timeouts for b in boots),
        "agents": agents,
    }


def row_of(case: str, runs: dict[str, list[ct.Boot]]) -> dict:
    """The results row of one case; ratios and the fleet's load per 1,000 boots."""
    row: dict = {"provider": case, "runs": len(runs["ours"])}
    for side, boots in runs.items():
        row[side] = summary(boots)
    ours = row["ours"]["ms"]
    row["ratio_stock"] = round(row["stock"]["ms"] / ours, 2) if ours else None
    row["ratio_today"] = round(row["today"]["ms"] / ours, 2) if ours else None
    row["per_1000_boots"] = {side: {"requests": row[side]["requests"] * 1000,
                                    "bytes": row[side]["bytes"] * 1000} for side in runs}
    return row


def main() -> int:
    if sys.argv[1:] == ["--rst"]:
        print(rst_tables(json.loads(RESULTS.read_text())))
        return 0
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    wanted = sys.argv[2:] or list(ct.DEFAULT_CASES)
    unknown = [n for n in wanted if n not in ct.CASES]
    if unknown:
        print(f"bench/boot.py: unknown case {unknown[0]!r}; one of {', '.join(ct.CASES)}",
              file=sys.stderr)
        return 2
    release = sandbox.releases()[-1]
    images = {"project": image.build(), "today": ct.image()}
    root = guestroot.build(release)
    rows = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-boot-") as tmp:
        top = Path(tmp)
        for name in wanted:
            cloud = ct.CASES[name]
            runs: dict[str, list[ct.Boot]] = {s: [] for s in ct.SIDES}
            # Interleaved, so that a change of the machine's load falls on every side.
            for i in range(repeats):
                for side in ct.SIDES:
                    b = ct.boot(cloud, side, top / name / f"{side}{i}", images=images,
                                root=root, icount=ICOUNT_SHIFT)
                    if not b.finished:
                        print(f"bench/boot.py: {name} {side}: a stage did not finish",
                              file=sys.stderr)
                    runs[side].append(b)
            row = row_of(name, runs)
            rows.append(row)
            print(f"  {name}: ours {row['ours']['ms']} ms, stock {row['stock']['ms']} ms, "
                  f"today {row['today']['ms']} ms"
                  + ("" if row["today"]["contextualized"] else " (today: not contextualized)"),
                  flush=True)
    doc = merged(rows, release, round(time.monotonic() - started), repeats)
    RESULTS.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    print_table(doc)
    plot(doc["providers"], release)
    bad = [r["provider"] for r in rows if ct.CASES[r["provider"]].source is not None and (
        not r["ours"]["contextualized"] or r["ours"]["timeouts"]
        or r["ours"]["agents"]["microboot"]["requests"] > ct.CASES[r["provider"]].max_requests)]
    if bad:
        print(f"bench/boot.py: targets missed for {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


def merged(rows: list[dict], release: str, seconds: int, repeats: int) -> dict:
    """The results document: this run's rows, and the earlier rows of other cases."""
    old: list[dict] = []
    runs: list[dict] = []
    if RESULTS.exists():
        try:
            prev = json.loads(RESULTS.read_text())
        except ValueError:
            prev = {}
        if prev.get("sides") == list(ct.SIDES) and prev.get("cloud_init") == release:
            old = prev.get("providers", [])
            runs = prev.get("runs", [])
    done = {r["provider"] for r in rows}
    order = list(ct.CASES)
    providers = sorted([r for r in old if r["provider"] not in done] + rows,
                       key=lambda r: order.index(r["provider"]) if r["provider"] in order else 99)
    return {
        "cloud_init": release,
        "sides": list(ct.SIDES),
        "machine": "qemu TCG (no KVM), 1 vCPU, 512 MiB; Debian's cloud kernel",
        "clock": f"guest clock by instruction count: qemu -icount shift={ICOUNT_SHIFT},sleep=on "
                 f"({2 ** ICOUNT_SHIFT} ns an instruction; idle waits in real time)",
        "contextualized": "cloud-init's runcmd ran, the µCernVM settings were had (ours, "
                          "today: the seed's ucontext), amiconfig ran over the amiconfig "
                          "sections; 'missing' lists what was not applied",
        "ms": "to contextualized, or to giving up: ours: microboot stage + cloud-init; "
              "stock: cloud-init + amiconfig service; today: µCernVM search and extra "
              "scan + cloud-init + amiconfig.sh user",
        "agents": "per agent, told apart by the User-Agent of their requests: microboot "
                  "(ours's stage, today's µCernVM), cloud-init, amiconfig.sh (today's own "
                  "search), amiconfig; search_ms: the agent's search (microboot: the whole "
                  "stage; cloud-init: its datasources' search; amiconfig.sh: its retrieval); "
                  "requests, bytes (answers' bodies): medians; timeouts: most in one boot",
        "stock_datasource_list": [*guestboot.STOCK_LIST, "<the cloud's>", "None"],
        "runs": [*runs, {"cases": [r["provider"] for r in rows], "repeats": repeats,
                         "seconds": seconds}],
        "providers": providers,
    }


def _side_cell(r: dict, side: str) -> str:
    s = r[side]
    return f"{s['ms']}" + ("" if s["contextualized"] else "*")


def print_table(doc: dict) -> None:
    rows = doc["providers"]
    print(f"boot to contextualized in the VM, cloud-init {doc['cloud_init']}, medians "
          "(* = not contextualized: time to giving up)")
    print(f"{'case':<12} {'runs':>4} {'ours ms':>8} {'stock ms':>9} {'today ms':>9} "
          f"{'stock:ours':>10} {'today:ours':>10} {'requests o/s/t':>15} {'t/o o/s/t':>10}")
    for r in rows:
        req = "/".join(str(r[s]["requests"]) for s in ct.SIDES)
        tos = "/".join(str(r[s]["timeouts"]) for s in ct.SIDES)
        print(f"{r['provider']:<12} {r['runs']:>4} {_side_cell(r, 'ours'):>8} "
              f"{_side_cell(r, 'stock'):>9} {_side_cell(r, 'today'):>9} "
              f"{r['ratio_stock']:>9.2f}x {r['ratio_today']:>9.2f}x {req:>15} {tos:>10}")
        for side in ct.SIDES:
            for line in r[side]["missing"]:
                print(f"{'':<12} {side}: {line}")


def _rst(header: list[list[str]], body: list[list[str]]) -> str:
    """A reStructuredText simple table; the header left-aligned (its two
    lines make one cell each: lines indented differently would be a block
    quote in the cell), the body's first column left-aligned, the rest right."""
    cols = len(header[0])
    widths = [max(len(r[i]) for r in header + body) for i in range(cols)]
    rule = "  ".join("=" * w for w in widths)

    def line(r: list[str], left: bool = False) -> str:
        return "  ".join(c.ljust(w) if i == 0 or left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(r, widths))).rstrip()

    return "\n".join([rule, *(line(r, left=True) for r in header), rule, *map(line, body),
                      rule])


def rst_tables(doc: dict) -> str:
    """The README's tables from a results document (``boot.py --rst``)."""
    rows = doc["providers"]
    body, fleet = [], []
    for r in rows:
        t = r["today"]["agents"]
        body.append([
            r["provider"], str(r["runs"]), _side_cell(r, "ours"), _side_cell(r, "stock"),
            _side_cell(r, "today"), f"{r['ratio_stock']:.2f}", f"{r['ratio_today']:.2f}",
            f"{r['ours']['agents']['microboot']['search_ms']}",
            " / ".join(str(t[a]["search_ms"]) for a in ("microboot", "cloud-init",
                                                         "amiconfig.sh")),
            " / ".join(str(r[s]["requests"]) for s in ct.SIDES),
            " / ".join(str(r[s]["timeouts"]) for s in ct.SIDES)])
        fleet.append([r["provider"], *(
            f"{r['per_1000_boots'][s]['requests']:,} / {r['per_1000_boots'][s]['bytes'] / 1e6:.2f}"
            for s in ct.SIDES)])
    main = _rst([["case", "boots", "ours", "stock", "today", "stock :", "today :", "ours's",
                  "today's searches ms", "requests", "time-outs"],
                 ["", "a side", "ms", "ms", "ms", "ours", "ours", "stage ms",
                  "µCernVM / c-i / ami.sh", "o / s / t", "o / s / t"]], body)
    load = _rst([["case", "ours", "stock", "CernVM today"],
                 ["", "requests / MB", "requests / MB", "requests / MB"]], fleet)
    return main + "\n\n" + load


def plot(rows: list[dict], release: str) -> None:
    """One bar group per case, three sides, into bench/boot-times.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["provider"] for r in rows]
    fig, ax = plt.subplots(figsize=(11, 5))
    w = 0.27
    for k, side in enumerate(ct.SIDES):
        xs = [i + (k - 1) * w for i in range(len(rows))]
        bars = ax.bar(xs, [r[side]["ms"] / 1000 for r in rows], w, label=LABELS[side])
        for x, r, bar in zip(xs, rows, bars):
            s = r[side]
            notes = [f"{s['timeouts']} t/o"] if s["timeouts"] else []
            if not s["contextualized"]:
                notes.append("not\ncontext-\nualized")
                bar.set_hatch("//")
            if notes:
                ax.annotate("\n".join(notes), (x, s["ms"] / 1000), ha="center",
                            va="bottom", fontsize=7)
    ax.set_xticks(list(range(len(rows))), names)
    ax.set_ylabel("seconds to contextualized (median; qemu TCG,\ninstruction-counted guest clock)")
    ax.set_title(f"Whole VM boots to contextualized, cloud-init {release} "
                 "(hatched: context not applied, time to giving up)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=1, frameon=False,
              fontsize=8)
    fig.tight_layout()
    fig.savefig(PLOT, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
