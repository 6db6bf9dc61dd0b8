"""Fixtures of the whole-VM tests: the image (built once per run) and a
booter that records every boot's times for the summary at the end."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from pathlib import Path

import pytest

from . import image, qemu

#: (test id, wall seconds, guest ms at power-off) of every boot of this run
BOOTS: list[dict] = []
RESULTS = Path(__file__).resolve().parents[2] / "build" / "vm-boot-times.json"


def record_boot(test: str, res: qemu.BootResult) -> None:
    """Keep one boot's times for the summary at the end of the run."""
    BOOTS.append({
        "test": test,
        "wall_s": round(res.wall_s, 3),
        "guest_poweroff_ms": res.times_ms.get("poweroff"),
        "guest_init_ms": res.times_ms.get("init"),
        "fetch_ms": res.fetch_ms,
        "timed_out": res.timed_out,
    })


@pytest.fixture(scope="session")
def vm_image() -> image.VMImage:
    """The test VM, from the cache or built once for the whole run."""
    return image.build()


@pytest.fixture
def vm_boot(vm_image: image.VMImage, request: pytest.FixtureRequest,
            tmp_path: Path) -> Callable[..., qemu.BootResult]:
    """``boot()`` with this run's image, keeping the boot's files in tmp_path."""

    def run(**kw) -> qemu.BootResult:
        kw.setdefault("image", vm_image)
        kw.setdefault("workdir", tmp_path / f"boot{len(BOOTS)}")
        res = qemu.boot(**kw)
        record_boot(request.node.nodeid, res)
        return res

    return run


def pytest_terminal_summary(terminalreporter) -> None:
    """Median times of this run's completed boots, also in build/vm-boot-times.json."""
    if not BOOTS:
        return
    done = [b for b in BOOTS if not b["timed_out"]]
    if not done:
        return
    walls = [b["wall_s"] for b in done]
    guest = [b["guest_poweroff_ms"] for b in done if b["guest_poweroff_ms"] is not None]
    summary = {
        "boots": len(done),
        "median_wall_s": round(statistics.median(walls), 3),
        "median_guest_poweroff_ms": statistics.median(guest) if guest else None,
        "each": BOOTS,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    terminalreporter.write_sep("-", "VM boots")
    terminalreporter.write_line(
        f"{len(done)} completed boots: median {summary['median_wall_s']} s qemu start to exit, "
        f"guest at power-off {summary['median_guest_poweroff_ms']} ms (kernel clock); "
        f"details in {RESULTS.relative_to(RESULTS.parents[1])}"
    )
