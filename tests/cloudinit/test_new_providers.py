"""NoCloud, Vac (EC2 found by the probe) and Azure's ready report on real
cloud-init, every supported release: cloud_name, instance id, and for Azure
the Health report the fake wireserver recorded (at 168.63.129.16:80 in the
sandbox's own network namespace)."""

from __future__ import annotations

import base64

from tests.cloudinit.helpers import assert_clean_boot, cernvm_warnings
from tests.fakes.wireserver import CONTAINER_ID, INCARNATION, INSTANCE_ID, parse_report
from tests.harness import sandbox

RAW_NOCLOUD = b"""\
instance-id: iid-nocloud-7
local-hostname: nc-host
dsmode: net
custom:
  rack: b12
"""


def test_nocloud_seed(machine):
    meta = {"instance-id": "iid-nocloud-7", "local-hostname": "nc-host",
            "nocloud-meta-data-base64": base64.b64encode(RAW_NOCLOUD).decode()}
    machine.write_seed("NoCloud", "#cloud-config\n{}\n", meta)
    result = machine.boot(sandbox.BOOT_STAGES[:2])
    assert_clean_boot(machine, result)
    assert result.v1["cloud_name"] == "nocloud"
    assert result.v1["instance_id"] == "iid-nocloud-7"
    ds = machine.query("ds")
    meta_data = ds.get("meta_data") or ds["meta-data"]
    # the datasource read the raw file for the keys the stage did not pick
    assert meta_data["custom"] == {"rack": "b12"}
    assert "nocloud-meta-data-base64" not in meta_data
    assert not cernvm_warnings(machine)


def test_nocloud_instance_id_only_in_the_raw_file(machine):
    raw = b"{instance-id: flow-style-id}\n"  # YAML flow: not a shape the stage reads
    machine.write_seed("NoCloud", "", {"nocloud-meta-data-base64": base64.b64encode(raw).decode()})
    result = machine.boot(sandbox.BOOT_STAGES[:2])
    assert_clean_boot(machine, result)
    assert result.v1["instance_id"] == "flow-style-id"


def test_vac_seed_found_by_the_probe(machine):
    meta = {"instance-id": "vac-instance-3",
            "cernvm-probe": "169.254.169.254:80 accepted a connection; no local evidence"}
    machine.write_seed("EC2", "[amiconfig]\nplugins=cernvm\n", meta)
    result = machine.boot(sandbox.BOOT_STAGES[:2])
    assert_clean_boot(machine, result)
    assert result.v1["cloud_name"] == "aws"
    assert result.v1["instance_id"] == "vac-instance-3"


def test_azure_reports_ready_once(machine_factory):
    machine = machine_factory()
    record = machine.dir / "wireserver"
    record.mkdir()
    machine.add_service(["-m", "tests.fakes.wireserver", "--host", "168.63.129.16",
                         "--port", "80", "--record", str(record), "--lifetime", "120"],
                        address="168.63.129.16")
    machine.write_seed("Azure", "#cloud-config\n{}\n",
                       {"instance-id": "5c5b8e1a-3e0d-4d6b-9b9a-0123456789ab"})
    result = machine.boot()
    assert_clean_boot(machine, result)
    assert result.v1["cloud_name"] == "azure"
    assert result.v1["instance_id"] == "5c5b8e1a-3e0d-4d6b-9b9a-0123456789ab"
    reports = sorted(record.glob("report-*.xml"))
    assert len(reports) == 1, machine.log
    assert parse_report(reports[0].read_bytes()) == {
        "GoalStateIncarnation": INCARNATION, "ContainerId": CONTAINER_ID,
        "InstanceId": INSTANCE_ID, "State": "Ready"}
    assert "reported ready to Azure's wireserver 168.63.129.16" in machine.log
    assert not cernvm_warnings(machine)
    # a second boot of the same instance: no second report
    result = machine.boot(sandbox.BOOT_STAGES[:2])
    assert_clean_boot(machine, result)
    assert len(list(record.glob("report-*.xml"))) == 1
