"""The provider's network description in the seed's ``network-data``.

OpenStack's ``network_data.json`` (metadata service, config drive) as it was
given; EC2's per-interface metadata as the ``network`` item of cloud-init's
Ec2 metadata, read with cloud-init's own metadata reader from the same fake
for comparison. Bounded, 0600, no network-data where the provider has none,
and a bad answer costs the network-data only, never the seed.
"""

from __future__ import annotations

import json
import os
import subprocess

from tests.fakes import ec2, openstack
from tests.fakes.metadata import Instance, MetadataService
from tests.harness import sandbox

from .conftest import Machine, seed_files

UD = b"#cloud-config\n{}\n"
EC2 = Machine(dmi=ec2.DMI)
OPENSTACK = Machine(dmi=openstack.DMI)
NET_PATH = "/latest/meta-data/network/interfaces/macs/"

#: the keys of an interface that cloud-init's Ec2 converter reads
KEYS = ("device-number", "network-card", "local-ipv4s", "ipv6s", "subnet-ipv4-cidr-block",
        "subnet-ipv6-cidr-blocks")


def leaf(value: str) -> str | list[str]:
    """A value as cloud-init's MetadataLeafDecoder gives it: lines as a list."""
    return value.splitlines() if "\n" in value else value


def test_ec2_two_interfaces(fetch) -> None:
    with MetadataService("EC2", UD, instance=Instance(nics=ec2.TWO_NICS)) as svc:
        run = fetch(EC2, svc.url)
    assert run.rc == 0, run.stderr
    files = seed_files(run.seed)  # asserts 0700 and 0600
    got = json.loads(files["network-data"])
    assert got == {"interfaces": {"macs": {
        n["mac"]: {k: leaf(v) for k, v in n.items() if k in KEYS} for n in ec2.TWO_NICS}}}
    primary = got["interfaces"]["macs"]["06:5f:3a:9b:10:01"]
    assert primary["local-ipv4s"] == ["172.31.10.5", "172.31.10.6"]
    assert primary["ipv6s"] == "2a05:d018:1:200::5"
    # token, user-data and friends with the interface list, 6 keys of each interface
    assert len(svc.requests) == 1 + 5 + 2 * 6
    asked = {r.path.rsplit("/", 1)[1] for r in svc.requests if r.path.startswith(NET_PATH)}
    assert asked == {"", *KEYS}  # the list, then only the keys that matter
    assert svc.count("GET", NET_PATH) == 1


def test_ec2_one_interface_in_one_run_with_the_user_data(fetch) -> None:
    """The machine's one interface is the instance's: its keys go with the
    user-data (its MAC from the kernel), no second round trip."""
    mac = ec2.ONE_NIC[0]["mac"]
    machine = Machine(dmi=ec2.DMI, nics={"lo": "00:00:00:00:00:00",
                                                               "eth0": mac})
    with MetadataService("EC2", UD) as svc:
        run = fetch(machine, svc.url)
    assert run.rc == 0, run.stderr
    got = json.loads(seed_files(run.seed)["network-data"])
    assert list(got["interfaces"]["macs"]) == [mac]
    assert len(svc.requests) == 1 + 5 + 4
    assert "second run" not in run.stderr


def test_ec2_local_interface_not_the_instances_asks_again(fetch) -> None:
    """A MAC the list does not hold (the kernel's view is a guess): the
    list's interfaces are asked for in a second run, as without it."""
    machine = Machine(dmi=ec2.DMI, nics={"eth0": "02:00:00:00:00:09"})
    with MetadataService("EC2", UD) as svc:
        run = fetch(machine, svc.url)
    assert run.rc == 0, run.stderr
    got = json.loads(seed_files(run.seed)["network-data"])
    assert list(got["interfaces"]["macs"]) == [ec2.ONE_NIC[0]["mac"]]
    assert "EC2: interfaces " + ec2.ONE_NIC[0]["mac"] + ": their keys in a second run" \
        in run.stderr
    assert len(svc.requests) == 1 + 5 + 4 + 4


#: cloud-init 26.2's own IMDS crawl (what DataSourceEc2 keeps as metadata),
#: run in a process of its own: importing cloud-init here would change what
#: other tests of this process find importable
CRAWL = """
import json, sys
from cloudinit.sources.helpers import ec2
print(json.dumps(ec2.get_instance_metadata("latest", sys.argv[1])["network"]))
"""


def test_ec2_network_data_is_cloud_inits_own_reading(fetch) -> None:
    """The keys we keep hold what cloud-init's Ec2 metadata crawl gives for them."""
    with MetadataService("EC2", UD, instance=Instance(nics=ec2.TWO_NICS),
                         imds_v1_only=True) as svc:
        run = fetch(EC2, svc.url)
        crawl = subprocess.run(
            [str(sandbox.python_for("26.2")), "-c", CRAWL, svc.url],
            env={**os.environ, "PYTHONPATH": str(sandbox.site_packages("26.2"))},
            capture_output=True, text=True, timeout=60, check=False)
    assert run.rc == 0, run.stderr
    assert crawl.returncode == 0, crawl.stderr
    theirs = json.loads(crawl.stdout)["interfaces"]["macs"]
    ours = json.loads((run.seed / "network-data").read_bytes())["interfaces"]["macs"]
    assert ours == {mac: {k: v for k, v in nic.items() if k in KEYS}
                    for mac, nic in theirs.items()}
    assert ours["06:5f:3a:9b:10:01"]["local-ipv4s"] == ["172.31.10.5", "172.31.10.6"]


def test_ec2_without_interfaces_has_no_network_data(fetch) -> None:
    with MetadataService("EC2", UD, instance=Instance(nics=[])) as svc:
        run = fetch(EC2, svc.url)
    assert run.rc == 0, run.stderr
    assert "network-data" not in seed_files(run.seed)
    assert len(svc.requests) == 6 and "network" not in run.stderr


def test_ec2_hostile_value_costs_the_network_data_only(fetch) -> None:
    nic = ec2.nic("06:5f:3a:9b:10:01", 0, ['172.31.10.5"}, "x": {"y'], "172.31.0.0/20")
    with MetadataService("EC2", UD, instance=Instance(nics=[nic])) as svc:
        run = fetch(EC2, svc.url)
    assert run.rc == 0, run.stderr
    files = seed_files(run.seed)
    assert "network-data" not in files and files["user-data"] == UD
    assert run.stderr.count("no network-data") == 1
    assert "local-ipv4s: not an address, prefix or number" in run.stderr


def test_ec2_interface_list_that_is_no_mac(fetch) -> None:
    answers = {NET_PATH: (200, b"../../etc/\n")}
    with MetadataService("EC2", UD, answers=answers) as svc:
        run = fetch(EC2, svc.url)
    assert run.rc == 0 and "network-data" not in seed_files(run.seed)
    assert "holds no MAC address" in run.stderr
    assert len(svc.requests) == 6  # nothing asked under it


def test_ec2_interface_key_failing_costs_the_network_data_only(fetch) -> None:
    path = NET_PATH + "52:54:00:12:34:56/local-ipv4s"
    with MetadataService("EC2", UD, answers={path: (403, b"Forbidden")}) as svc:
        run = fetch(EC2, svc.url)
    assert run.rc == 0, run.stderr
    assert "network-data" not in seed_files(run.seed)
    assert "status 403; no network-data" in run.stderr


def test_openstack_service_as_given(fetch) -> None:
    two = Instance(network_data=openstack.NETWORK_DATA)
    with MetadataService("OpenStack", UD, instance=two) as svc:
        run = fetch(OPENSTACK, svc.url)
    assert run.rc == 0, run.stderr
    assert seed_files(run.seed)["network-data"] == json.dumps(openstack.NETWORK_DATA).encode()
    assert svc.count("GET", "/openstack/latest/network_data.json") == 1
    assert len(svc.requests) == 5  # user-data, meta-data, network, both vendor files


def test_openstack_without_network_data_is_normal(fetch) -> None:
    with MetadataService("OpenStack", UD, instance=Instance(network_data=None)) as svc:
        run = fetch(OPENSTACK, svc.url)
    assert run.rc == 0, run.stderr
    assert "network-data" not in seed_files(run.seed)
    assert "network_data" not in run.stderr  # a 404 is no news


def test_config_drive_as_given(fetch) -> None:
    raw = json.dumps(openstack.NETWORK_DATA, indent=1).encode()
    m = Machine(media={"config-2": {"openstack/latest/user_data": UD,
                                    "openstack/latest/meta_data.json": b'{"uuid": "u-1"}',
                                    "openstack/latest/network_data.json": raw}})
    run = fetch(m)
    assert run.rc == 0, run.stderr
    assert seed_files(run.seed)["network-data"] == raw


def test_config_drive_network_data_over_its_cap(fetch) -> None:
    raw = b'{"links": [], "x": "' + b"a" * 300000 + b'"}'
    m = Machine(media={"config-2": {"openstack/latest/user_data": UD,
                                    "openstack/latest/network_data.json": raw}})
    run = fetch(m)
    assert run.rc == 0, run.stderr
    assert "network-data" not in seed_files(run.seed)
    assert "network_data.json: more than 262144 bytes: not taken" in run.stderr


def test_an_old_network_data_goes_with_a_new_seed_without_one(fetch, tmp_path) -> None:
    seed = tmp_path / "seed"
    seed.mkdir(mode=0o700)
    (seed / "network-data").write_text("{}")
    m = Machine(media={"config-2": {"openstack/latest/user_data": UD}})
    run = fetch(m)
    assert run.rc == 0, run.stderr
    assert "network-data" not in seed_files(seed)
