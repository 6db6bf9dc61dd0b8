"""Faults of the metadata service and of the seed, measured (issue 17).

For each fault, what this project does and what stock cloud-init 26.2 does
on an EC2 machine (and OpenStack for the service faults), writing
``bench/faults.json`` and printing the README's table:

- this project: the microboot stage (fetch-context under busybox, loopback
  fake with the fault, the default retry budget); when it leaves the marker,
  the boot goes on in the sandbox with cloud-init 26.2 and the CernVM
  datasource's fallback, against the same fake whose fault has run for as
  long as the stage took (its time counted from where the stage stopped);
- stock: cloud-init 26.2 alone (``datasource_list: [ Ec2, None ]`` or
  OpenStack), its own retries, the fake at 169.254.169.254 in the sandbox's
  network namespace.

Seconds are from the first request to the end of cloud-init's network stage
(the stage's seconds plus cloud-init's). "lost" is the time beyond the same
boot with a working service. Requests are those the fake saw, plus the
stage's count of connections refused.

    python bench/faults.py [FAULT...]
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes.metadata import Fault, MetadataService
from tests.harness import sandbox
from tests.microboot.conftest import Machine, busybox_path, run_fetch

OUT = Path(__file__).with_name("faults.json")
RELEASE = "26.2"
USER_DATA = b"#cloud-config\nruncmd:\n - [sh, -c, 'echo ran > /var/log/contextualized']\n"
#: service faults (Fault.parse) and seed faults
SERVICE_FAULTS = ("none", "503:5", "503:20", "503:60", "refuse:10", "silent", "drop", "slow")
SEED_FAULTS = ("seed-missing", "seed-empty", "seed-source-only")
EC2_DMI = {
    "sys_vendor": "Amazon EC2", "product_uuid": "ec2e1916-9099-7caf-fd21-012345abcdef",
    "product_serial": "ec2e1916-9099-7caf-fd21-012345abcdef", "product_name": "t3.micro",
    "bios_vendor": "Amazon EC2", "chassis_asset_tag": "Amazon EC2",
    "chassis_vendor": "Amazon EC2", "board_vendor": "Amazon EC2",
}
OPENSTACK_DMI = {"sys_vendor": "OpenStack Foundation", "product_name": "OpenStack Nova",
                 "chassis_asset_tag": "OpenStack Nova"}
CLOUDS = {
    "EC2": (EC2_DMI, "Ec2", Machine(dmi={"sys_vendor": "Amazon EC2"})),
    "OpenStack": (OPENSTACK_DMI, "OpenStack", Machine(dmi={"product_name": "OpenStack Nova"})),
}


def stage(cloud: str, fault: str, work: Path) -> dict:
    """The microboot stage against a loopback fake with FAULT."""
    parsed = None if fault == "none" else Fault.parse(fault)
    bb = busybox_path(work / "bb")
    with MetadataService(cloud, USER_DATA, fault=parsed, lifetime=200) as svc:
        run = run_fetch(bb, work, CLOUDS[cloud][2], svc.url, env={"CERNVM_RETRY_S": None},
                        timeout=60)
        seen = len(svc.requests)
    refused = len(re.findall(r"no connection, trying again|no connection after", run.stderr))
    lines = [ln.removeprefix("fetch-context: ") for ln in run.stderr.splitlines()]
    return {"rc": run.rc, "seconds": round(run.seconds, 2), "requests": seen + refused,
            "contextualized": run.rc == 0, "log": lines[-1] if lines else "",
            "marker": (work / "seed" / "failure").read_text().strip()
            if (work / "seed" / "failure").exists() else None}


def remaining(fault: str, spent: float) -> str | None:
    """FAULT as it stands SPENT seconds later (None: over)."""
    parsed = Fault.parse(fault)
    if parsed.seconds is None:
        return fault
    left = parsed.seconds - spent
    return f"{parsed.kind}:{left:.1f}" if left > 0 else None


def boot(work: Path, cloud: str, fault: str | None, *, stock: bool,
         seed: str | None = None, failure: str | None = None) -> dict:
    """One sandboxed boot (local and network stages) of cloud-init 26.2."""
    dmi, dsname, _ = CLOUDS[cloud]
    config = {"datasource_list": [dsname, "None"]} if stock else {}
    machine = sandbox.Machine(work, RELEASE, dmi=dmi, extra_config=config,
                              cernvm_config=sandbox.REPO / "cfg" / "90_cernvm.cfg"
                              if not stock else Path("/nonexistent"))
    user_data = work / "user-data.in"
    user_data.write_bytes(USER_DATA)
    argv = ["-m", "tests.fakes.metadata", "--provider", cloud, "--user-data", str(user_data),
            "--host", "169.254.169.254", "--port", "80", "--lifetime", "400"]
    if fault and fault != "none":
        argv += ["--fault", fault]
    machine.add_service(argv, address="169.254.169.254")
    if seed == "empty":
        machine.seed_dir.mkdir(mode=0o700, parents=True)
    elif seed == "source-only":
        machine.write_seed(cloud, None)
        if failure:
            (machine.seed_dir / "failure").write_text(failure + "\n")
            (machine.seed_dir / "failure").chmod(0o600)
    try:
        result = machine.boot(sandbox.BOOT_STAGES)
    except RuntimeError:  # a stage outlived the sandbox's 300 s
        return {"seconds": None, "requests": None, "contextualized": False, "warnings": None,
                "log": "a stage did not end within the sandbox's 300 s", "platform": None,
                "subplatform": None}
    seconds = sum(s.seconds for s in result.stages[:2])
    served = [ln for ln in machine.service_log().splitlines() if ln[:3] in ("GET", "PUT")]
    warnings = [ln.split(" - ", 1)[-1] for ln in machine.log.splitlines() if "[WARNING]" in ln]
    done = (machine.dir / "var-log" / "contextualized").exists()
    return {"seconds": round(seconds, 2), "requests": len(served), "contextualized": done,
            "warnings": len(warnings), "log": warnings[0][:160] if warnings else "",
            "platform": (result.v1 or {}).get("platform"),
            "subplatform": (result.v1 or {}).get("subplatform")}


def project(cloud: str, fault: str, top: Path) -> dict:
    """The stage, then (when it left the marker) the fallback boot."""
    if fault.startswith("seed-"):
        kind = fault.removeprefix("seed-")
        after = boot(top / "boot", cloud, None, stock=False,
                     seed={"missing": None, "empty": "empty", "source-only": "source-only"}[kind])
        return {"fault": fault, "cloud": cloud, "stage": None, "boot": after,
                "seconds": after["seconds"], "requests": after["requests"],
                "contextualized": after["contextualized"], "log": after["log"]}
    first = stage(cloud, fault, top / "stage")
    result = {"fault": fault, "cloud": cloud, "stage": first}
    if first["contextualized"]:
        result.update(seconds=first["seconds"], requests=first["requests"],
                      contextualized=True, log=first["log"], boot=None)
        return result
    later = None if fault == "none" else remaining(fault, first["seconds"])
    after = boot(top / "boot", cloud, later, stock=False, seed="source-only",
                 failure=first["marker"])
    total = None if after["seconds"] is None else round(first["seconds"] + after["seconds"], 2)
    result.update(boot=after, seconds=total,
                  requests=first["requests"] + (after["requests"] or 0),
                  contextualized=after["contextualized"], log=after["log"] or first["log"])
    return result


def stock(cloud: str, fault: str, top: Path) -> dict:
    """Stock cloud-init 26.2 with its own datasource for CLOUD."""
    if fault.startswith("seed-"):
        return {"fault": fault, "cloud": cloud, "seconds": None, "requests": None,
                "contextualized": None, "log": "n/a: stock reads no seed"}
    out = boot(top / "stock", cloud, fault, stock=True)
    return {"fault": fault, "cloud": cloud, **out}


def case(cloud: str, fault: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="cernvm-faults-") as tmp:
        top = Path(tmp)
        start = time.monotonic()
        ours = project(cloud, fault, top)
        theirs = stock(cloud, fault, top)
        return {"cloud": cloud, "fault": fault, "project": ours, "stock": theirs,
                "wall_s": round(time.monotonic() - start, 1)}


def table(results: list[dict]) -> str:
    """The README's table (reStructuredText grid of the key figures)."""
    base = {r["cloud"]: (r["project"]["seconds"], r["stock"]["seconds"])
            for r in results if r["fault"] == "none"}
    rows = [("cloud", "fault", "ours: ctx", "s", "lost", "req", "stock: ctx", "s", "lost", "req")]
    for r in results:
        p, s = r["project"], r["stock"]
        b = base.get(r["cloud"], (None, None))

        def lost(value, ref):
            return "" if value is None or ref is None else f"{max(0.0, value - ref):.1f}"
        rows.append((r["cloud"], r["fault"], _yes(p["contextualized"]), _num(p["seconds"]),
                     lost(p["seconds"], b[0]), _num(p["requests"]),
                     _yes(s["contextualized"]), _num(s["seconds"]), lost(s["seconds"], b[1]),
                     _num(s["requests"])))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    rule = "  ".join("=" * w for w in widths)
    lines = [rule, "  ".join(str(c).ljust(w) for c, w in zip(rows[0], widths)), rule]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in rows[1:]]
    lines.append(rule)
    return "\n".join(lines)


def _yes(value: object) -> str:
    return "n/a" if value is None else ("yes" if value else "no")


def _num(value: object) -> str:
    return "" if value is None else f"{value:.1f}" if isinstance(value, float) else str(value)


def main(argv: list[str]) -> int:
    wanted = argv or [*SERVICE_FAULTS, *SEED_FAULTS]
    jobs = [("EC2", f) for f in wanted]
    jobs += [("OpenStack", f) for f in ("none", "503:20", "silent") if f in wanted]
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda job: case(*job), jobs))
    OUT.write_text(json.dumps({"release": RELEASE, "results": results}, indent=2) + "\n")
    print(table(results))
    for r in results:
        print(f"{r['cloud']} {r['fault']}: ours: {r['project']['log']} | "
              f"stock: {r['stock']['log']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
