"""Benchmark of the datasource: the CernVM seed against NoCloud's.

NoCloud reading a seed directory is the fastest stock path cloud-init has.
Each run boots a fresh sandboxed machine (real cloud-init, newest release)
and times ``init --local`` plus ``init``, with the same user-data given
once as a CernVM seed and once as a NoCloud seed. Runs alternate between
the two so that load on the machine hits both alike; the figure is the
ratio of the medians. Target: CernVM within 5% of NoCloud.

    python bench/bench.py [REPEATS] [RELEASE]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.harness import sandbox

STAGES = sandbox.BOOT_STAGES[:2]
USER_DATA = (
    "#cloud-config\n"
    "write_files:\n"
    "  - path: /var/log/contextualized\n"
    "    content: 'yes'\n"
)
META = {"instance-id": "i-bench", "local-hostname": "bench"}


def _cernvm(machine: sandbox.Machine) -> None:
    machine.write_seed("EC2", USER_DATA, META)


def _nocloud(machine: sandbox.Machine) -> None:
    seed = machine.cloud_dir / "seed" / "nocloud"
    seed.mkdir(parents=True, mode=0o700)
    (seed / "user-data").write_text(USER_DATA)
    (seed / "meta-data").write_text(
        "".join(f"{key}: {value}\n" for key, value in META.items())
    )


def boot_seconds(top: Path, release: str, kind: str, index: int) -> float:
    """Seconds of ``init --local`` + ``init`` on a fresh machine of this kind."""
    extra = {} if kind == "CernVM" else {"datasource_list": ["NoCloud", "None"]}
    machine = sandbox.Machine(top / f"{kind}-{index}", release, extra_config=extra)
    (_cernvm if kind == "CernVM" else _nocloud)(machine)
    result = machine.boot(STAGES)
    if not result.ok or not (machine.dir / "var-log" / "contextualized").exists():
        raise RuntimeError(f"{kind} boot {index} did not contextualize:\n{machine.log[-3000:]}")
    return sum(stage.seconds for stage in result.stages)


def run(repeats: int = 7, release: str | None = None) -> dict:
    """Median seconds of each datasource and their ratio."""
    release = release or sandbox.releases()[-1]
    times: dict[str, list[float]] = {"CernVM": [], "NoCloud": []}
    with tempfile.TemporaryDirectory(prefix="bench-datasource-") as tmp:
        for index in range(repeats):
            for kind in times:
                times[kind].append(boot_seconds(Path(tmp), release, kind, index))
    cernvm, nocloud = (statistics.median(times[k]) for k in ("CernVM", "NoCloud"))
    return {"release": release, "repeats": repeats, "cernvm_s": cernvm,
            "nocloud_s": nocloud, "ratio": cernvm / nocloud}


def main(argv: list[str]) -> int:
    """Print the one-line figure."""
    repeats = int(argv[1]) if len(argv) > 1 else 7
    figure = run(repeats, argv[2] if len(argv) > 2 else None)
    print(
        f"datasource (cloud-init {figure['release']}, init --local + init, median of "
        f"{figure['repeats']}): CernVM {figure['cernvm_s'] * 1000:.0f} ms, NoCloud "
        f"{figure['nocloud_s'] * 1000:.0f} ms, ratio {figure['ratio']:.3f} (target <= 1.05)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
