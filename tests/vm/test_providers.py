"""Whole boots per provider: the VM as each cloud shows it, then real cloud-init.

Each cloud is booted once (module cache): Debian's cloud kernel with the
microboot stage, the cloud's DMI strings, its fake metadata service at the
address the guest expects, or its context image (written by this project's
make-iso code) on the CD-ROM. From the scratch disk the tests read the seed
and check it byte for byte; then real cloud-init (the newest release, and the
oldest for EC2) boots on that seed with the CernVM datasource and must report
the provider and consume the user-data.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from cloudinit_cernvm import providers as provider_records
from cloudinit_cernvm import ucernvm as ucernvm_module
from tests.cloudinit.helpers import assert_clean_boot
from tests.fakes.wireserver import parse_report
from tests.harness import sandbox

from . import conftest, image, providers, qemu
from .providers import (
    CLOUDS,
    RUNCMD_MARKER,
    UCONTEXT,
    USER_DATA,
    VENDOR_DATA,
    VENDOR_MARKER,
    Cloud,
)

REPO = Path(__file__).resolve().parents[2]
#: the amiconfig stand-in (tests/fakes/amiconfig); its checks run once it exists
AMICONFIG_STAND_IN = REPO / "tests" / "fakes" / "amiconfig"


class Booted:
    """One boot of one cloud, with the requests its fake service saw."""

    def __init__(self, res: qemu.BootResult, requests: list) -> None:
        self.res = res
        self.requests = requests


_BOOTS: dict[str, Booted] = {}


@pytest.fixture(scope="module")
def boot_cloud(vm_image: image.VMImage, tmp_path_factory: pytest.TempPathFactory):
    """boot_cloud(name) -> Booted: each cloud booted once for the module."""
    top = tmp_path_factory.mktemp("clouds")

    def run(name: str) -> Booted:
        if name not in _BOOTS:
            cloud = CLOUDS[name]
            work = top / name
            work.mkdir()
            res, requests = providers.boot(cloud, work, timeout=150, image=vm_image)
            conftest.record_boot(f"providers::{name}", res)
            _BOOTS[name] = Booted(res, requests)
        return _BOOTS[name]

    yield run
    _BOOTS.clear()


def machine_on_seed(cloud: Cloud, boot: Booted, workdir: Path, release: str) -> sandbox.Machine:
    """A sandboxed machine whose scratch disk holds the seed the VM wrote."""
    extra = {"datasource": {"CernVM": {
        "amiconfig_command": f"{AMICONFIG_STAND_IN} -c {AMICONFIG_STAND_IN}-default.cfg",
        "amiconfig_done_file": "/var/log/amiconfig-user.done"}}}
    machine = sandbox.Machine(workdir, release, dmi=cloud.dmi or None, extra_config=extra)
    if cloud.source == "Azure":  # the wireserver that takes the ready report
        record = workdir / "wireserver"
        record.mkdir(parents=True)
        machine.add_service(["-m", "tests.fakes.wireserver", "--host", "168.63.129.16",
                             "--port", "80", "--record", str(record)],
                            address="168.63.129.16")
    assert boot.res.workdir is not None
    src = boot.res.workdir / "out" / "context"
    shutil.copytree(src, machine.seed_dir, dirs_exist_ok=True)
    machine.seed_dir.chmod(boot.res.seed_modes["."])
    for name, mode in boot.res.seed_modes.items():
        if name != ".":
            (machine.seed_dir / name).chmod(mode)
    return machine


def check_amiconfig(machine: sandbox.Machine) -> None:
    """amiconfig ran once with the user-data's sections; µCernVM settings recorded."""
    records = machine.instance_dir / "cernvm"
    run = json.loads((records / "amiconfig.json").read_text())
    assert run["exit_status"] == 0 and run["parts"] >= 1, run
    # the stand-in's own record: one run, given the collected sections
    stand_in = machine.dir / "var-log" / "fake-amiconfig"
    assert (stand_in / "count").read_text().strip() == "1"
    given = (stand_in / "run-1" / "payload").read_text()
    assert given == (records / "amiconfig-user-data").read_text()
    for section in providers.AMICONFIG_SECTIONS:
        assert f"[{section}]" in given, given
    env = json.loads((stand_in / "run-1" / "env.json").read_text())
    assert env["AMICONFIG_LOCAL_USER_DATA"].endswith("/cernvm/amiconfig-user-data")
    # the µCernVM block of the user-data agrees with what microboot saved
    ucernvm = json.loads((records / "ucernvm.json").read_text())
    assert ucernvm["settings"] == ucernvm_module.parse_ucontext(UCONTEXT.decode())
    assert ucernvm["differences"] == []


def providers_record(cloud: Cloud) -> provider_records.Provider:
    """The provider record of the cloud's seed."""
    assert cloud.source is not None
    return provider_records.BY_NAME[cloud.source]


SEEDED = [name for name, c in CLOUDS.items() if c.source is not None]
#: the vendor-data files of the seed, as given (the fake nova's vendor_data2.json: {})
VENDOR_FILES = {"OpenStack": {"vendor-data": VENDOR_DATA, "vendor-data2": b"{}"},
                "ConfigDrive": {"vendor-data": VENDOR_DATA}}


@pytest.mark.parametrize("name", SEEDED)
def test_provider_boot_writes_the_seed(boot_cloud, name: str) -> None:
    cloud = CLOUDS[name]
    boot = boot_cloud(name)
    res = boot.res
    assert res.powered_off and not res.timed_out, res.serial[-3000:]
    assert res.exit_status == 0, res.fetch_stderr
    assert f"provider {cloud.source}:" in res.fetch_stderr
    assert res.seed is not None
    assert res.seed["source"] == f"{cloud.source}\n".encode()
    assert res.seed["user-data"] == USER_DATA  # byte for byte
    assert res.seed["ucontext"] == UCONTEXT
    meta = json.loads(res.seed["meta-data"]) if "meta-data" in res.seed else {}
    for key, value in cloud.meta.items():
        assert meta.get(key) == value, (key, meta)
    vendor = VENDOR_FILES.get(name, {})
    assert {k: v for k, v in res.seed.items() if k.startswith("vendor-data")} == vendor
    modes = {".": 0o700, "meta-data": 0o600, "source": 0o600, "ucontext": 0o600,
             "user-data": 0o600, **{k: 0o600 for k in vendor}}
    if not providers_record(cloud).meta_data:  # vSphere: user-data.txt alone
        del modes["meta-data"]
    if cloud.service in ("EC2", "OpenStack"):  # the fakes' interfaces, as the clouds'
        modes["network-data"] = 0o600
    assert sorted(res.seed) == sorted(k for k in modes if k != ".")
    assert res.seed_modes == modes
    # One fetch, few requests, no time-out.
    if cloud.service is not None:
        user_data_paths = {"EC2": "/latest/user-data", "CloudStack": "/latest/user-data",
                           "GCE": "/computeMetadata/v1/instance/attributes/user-data",
                           "Azure": "/metadata/instance/compute/userData",
                           "OpenStack": "/openstack/latest/user_data"}
        gets = [r for r in boot.requests
                if r.method == "GET" and r.path.split("?")[0] == user_data_paths[cloud.service]]
        assert len(gets) == 1, boot.requests
        assert len(boot.requests) <= cloud.max_requests, boot.requests
        # 404: the interface has no IPv6 (ipv6s), as on most EC2 instances
        assert all(r.status == 200 or r.path.endswith("/ipv6s") for r in boot.requests), \
            boot.requests
    if cloud.service == "EC2":
        assert boot.requests[0].method == "PUT"  # IMDSv2: the token first
    assert "trying again" not in res.fetch_stderr and "no answer" not in res.fetch_stderr
    assert res.fetch_ms is not None and res.fetch_ms < 5000


def test_no_cloud_boot_goes_on_without_seed(boot_cloud) -> None:
    res = boot_cloud("none").res
    assert res.powered_off and not res.timed_out
    assert res.exit_status == 1, res.fetch_stderr
    assert "no provider recognised" in res.fetch_stderr
    assert res.seed is None
    assert "vmtest: powering off" in res.serial  # the boot went on to its end


def _cloud_init_on_seed(boot_cloud, name: str, release: str, tmp_path: Path) -> None:
    cloud = CLOUDS[name]
    boot = boot_cloud(name)
    assert boot.res.exit_status == 0, boot.res.fetch_stderr
    machine = machine_on_seed(cloud, boot, tmp_path / "machine", release)
    result = machine.boot()
    assert_clean_boot(machine, result)
    v1 = machine.query("v1")
    assert v1["platform"] == "cernvm"
    assert v1["cloud_name"] == cloud.cloud_name
    assert v1["instance_id"] == cloud.instance_id
    marker = machine.dir / "var-log" / Path(RUNCMD_MARKER).name
    assert marker.exists(), f"cloud-init {release}: the cloud-config part did not run"
    assert marker.read_text() == "consumed\n"  # once
    if cloud.vendor:  # the site's vendor-data, from the seed, applied too
        site = machine.dir / "var-log" / Path(VENDOR_MARKER).name
        assert site.exists(), f"cloud-init {release}: the vendor-data did not run"
    # The seed was read, not fetched again: no URL in cloud-init's log.
    assert "url_helper" not in machine.log and "169.254" not in machine.log
    check_amiconfig(machine)
    if cloud.source == "Azure":  # the Ready report, once, with the goal state's ids
        reports = list((machine.dir / "wireserver").glob("report-*.xml"))
        assert len(reports) == 1, machine.log[-2000:]
        assert parse_report(reports[0].read_bytes())["State"] == "Ready"


@pytest.mark.parametrize("name", SEEDED)
def test_newest_cloud_init_consumes_the_seed(boot_cloud, name: str, tmp_path: Path) -> None:
    _cloud_init_on_seed(boot_cloud, name, sandbox.releases()[-1], tmp_path)


@pytest.mark.parametrize("name", ["EC2", "HEPiX"])
def test_oldest_cloud_init_consumes_the_seed(boot_cloud, name: str, tmp_path: Path) -> None:
    _cloud_init_on_seed(boot_cloud, name, sandbox.releases()[0], tmp_path)


def test_vac_is_found_by_the_probe(boot_cloud) -> None:
    res = boot_cloud("Vac").res
    assert res.exit_status == 0, res.fetch_stderr
    assert "no local evidence, but 169.254.169.254:80 accepts a connection (probe)" \
        in res.fetch_stderr
    assert "cernvm-probe" in json.loads(res.seed["meta-data"])


def test_no_cloud_probe_is_bounded(boot_cloud) -> None:
    res = boot_cloud("none").res
    line = re.search(r"probe: nothing answers on 169\.254\.169\.254:80 \((\d+) ms\)",
                     res.fetch_stderr)
    assert line, res.fetch_stderr
    assert int(line.group(1)) <= 1300
