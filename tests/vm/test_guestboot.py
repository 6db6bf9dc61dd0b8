"""Whole boots with cloud-init in the guest: the machinery of ``make bench``.

Two clouds, each booted both ways (``tests/vm/guestboot.py``): a config
drive on the CD-ROM, where stock cloud-init must find and mount the disk
itself, and EC2, where it must do its own DHCP and metadata crawl. The
tests check what the benchmark relies on: both sides contextualize from the
same user-data, ours reads the seed without a probe or a request, stock
really probes, mounts and asks, and the guest's stage times are recorded.
"""

from __future__ import annotations

import json

import pytest

from tests.harness import sandbox

from . import conftest, guestboot, guestroot, image
from .providers import AMICONFIG_SECTIONS, CLOUDS, MEDIA_ID

_BOOTS: dict[tuple[str, str], guestboot.GuestBoot] = {}


@pytest.fixture(scope="module")
def root_image():
    return guestroot.build(sandbox.releases()[-1])


@pytest.fixture(scope="module")
def booted(vm_image: image.VMImage, root_image, tmp_path_factory: pytest.TempPathFactory):
    """booted(cloud, side) -> GuestBoot, each booted once for the module."""
    top = tmp_path_factory.mktemp("guestboot")

    def run(name: str, side: str) -> guestboot.GuestBoot:
        key = (name, side)
        if key not in _BOOTS:
            b = guestboot.boot(CLOUDS[name], side, top / f"{name}-{side}", image=vm_image,
                               root=root_image, report=True)
            conftest.record_boot(f"guestboot::{name}-{side}", b.result)
            _BOOTS[key] = b
        return _BOOTS[key]

    yield run
    _BOOTS.clear()


def assert_contextualized(b: guestboot.GuestBoot) -> None:
    res = b.result
    assert res.powered_off and not res.timed_out, res.serial[-3000:]
    assert b.ok, [(s["args"], s["returncode"], s["stderr"][-500:]) for s in b.stages]
    assert [s["args"][0] for s in b.stages] == ["init", "init", "modules", "modules"]
    assert all(0 < s["seconds"] < guestboot.BOOT_TIMEOUT for s in b.stages)
    assert b.consumed, f"{b.side}: the runcmd marker is {b.marker!r}"
    assert "Traceback" not in b.log


@pytest.mark.parametrize("name", ["ConfigDrive", "EC2"])
def test_ours_reads_the_seed_and_runs_every_consumer(booted, name: str) -> None:
    b = booted(name, "ours")
    assert_contextualized(b)
    cloud = CLOUDS[name]
    status, v1 = guestboot.reports(b)
    assert "status: done" in status
    assert v1 is not None and v1["platform"] == "cernvm"
    assert v1["cloud_name"] == cloud.cloud_name and v1["instance_id"] == cloud.instance_id
    # One detection, one fetch: cloud-init neither probes disks nor asks a URL.
    assert "blkid" not in b.log and "url_helper" not in b.log, b.log[-2000:]
    assert b.fetch_ms is not None and b.ms > b.cloudinit_ms
    assert len(b.requests) <= cloud.max_requests
    # amiconfig ran once in the guest, with the user-data's sections.
    rec = b.result.records
    assert rec["cloudinit/var-log/fake-amiconfig/count"].strip() == "1"
    payload = rec["cloudinit/var-log/fake-amiconfig/run-1/payload"]
    assert all(f"[{s}]" in payload for s in AMICONFIG_SECTIONS), payload
    ucernvm = json.loads(rec["cloudinit/instance/cernvm/ucernvm.json"])
    assert ucernvm["differences"] == []


def test_stock_probes_and_mounts_the_config_drive(booted) -> None:
    b = booted("ConfigDrive", "stock")
    assert_contextualized(b)
    status, v1 = guestboot.reports(b)
    assert "status: done" in status
    assert v1 is not None and v1["platform"] == "configdrive"
    assert v1["subplatform"] == "config-disk (/dev/sr0)"
    assert v1["instance_id"] == MEDIA_ID
    assert "Running command ['blkid'" in b.log
    assert "'mount', '-o', 'ro', '-t', 'auto', '/dev/sr0'" in b.log
    # cloud-init leaves the amiconfig part alone; amiconfig's own service
    # then applies the same sections, once, and its run is timed too
    rec = b.result.records
    assert rec["cloudinit/var-log/fake-amiconfig/count"].strip() == "1"
    sections = json.loads(rec["cloudinit/var-log/fake-amiconfig/run-1/sections.json"])
    assert sorted(sections) == sorted(AMICONFIG_SECTIONS)
    assert b.amiconfig is not None and b.amiconfig["returncode"] == 0
    assert b.fetch_ms is None and b.ms == b.cloudinit_ms + b.amiconfig_service_ms
    assert b.amiconfig_service_ms > 0


def test_the_bench_clock_counts_instructions(vm_image, root_image, tmp_path) -> None:
    """Timed by instruction count, two boots measure alike (the bench's
    premise: host load does not move the figures)."""
    times = []
    for n in range(2):
        b = guestboot.boot(CLOUDS["ConfigDrive"], "ours", tmp_path / str(n), image=vm_image,
                           root=root_image, icount=2)
        assert_contextualized(b)
        assert "-icount" in b.result.command
        times.append(b.ms)
    assert abs(times[0] - times[1]) < 0.02 * times[0], times


def test_stock_does_its_own_dhcp_and_metadata_crawl(booted) -> None:
    b = booted("EC2", "stock")
    assert_contextualized(b)
    _, v1 = guestboot.reports(b)
    assert v1 is not None and v1["platform"] == "ec2"
    assert v1["instance_id"] == CLOUDS["EC2"].instance_id
    assert "Performing a dhcp discovery on eth0" in b.log
    ours = booted("EC2", "ours")
    assert len(b.requests) > len(ours.requests) > 0
    assert any(r.path.endswith("/user-data") for r in b.requests), b.requests
