"""The provider's network description reaches cloud-init, on every release.

A seed with ``network-data`` (OpenStack's ``network_data.json``, EC2's
interface metadata as the microboot stage writes it) boots the real local
stage on a machine with two interfaces; cloud-init's eni renderer writes
``/etc/network/interfaces.d/50-cloud-init``. The same metadata, converted in
the same sandbox by the converter that the release's own ConfigDrive /
OpenStack or Ec2 datasource calls and rendered by the same renderer, must
give the same file byte for byte. Without the feature the local stage
renders cloud-init's fallback (DHCP on one interface) and the files differ.
"""

from __future__ import annotations

import json
import shutil

import pytest

from tests.cloudinit.helpers import cernvm_warnings
from tests.fakes import ec2, openstack
from tests.fakes.metadata import Instance, MetadataService
from tests.microboot.conftest import Machine as StageMachine
from tests.microboot.conftest import busybox_path, run_fetch

#: the eni renderer, and the network configured (the sandbox turns it off)
NETWORK_ON = {"network": {}, "system_info": {"distro": "debian",
                                             "network": {"renderers": ["eni"]}}}
ENI = "interfaces.d/50-cloud-init"

#: the release's own converter and renderer, run inside the sandbox
REFERENCE = r'''
import inspect, json, sys
from cloudinit import distros, helpers
from cloudinit.distros import debian
from cloudinit.net import eni, network_state

kind, data_path, out = sys.argv[1:4]
with open(data_path) as f:
    data = json.load(f)
if kind == "openstack":  # DataSourceConfigDrive / DataSourceOpenStack.network_config
    from cloudinit.sources.helpers import openstack
    cfg = openstack.convert_net_json(data, known_macs=None)
else:  # DataSourceEc2.network_config, apply_full_imds_network_config on
    from cloudinit.sources import DataSourceEc2 as ec2
    convert = ec2.convert_ec2_metadata_network_config
    kwargs = {"full_network_config": True}
    if "distro" in inspect.signature(convert).parameters:
        distro = distros.fetch("debian")("debian", {"network": {"renderers": ["eni"]}},
                                         helpers.Paths({}))
        kwargs["distro"] = distro
    cfg = convert(data, **kwargs)
state = network_state.parse_net_config_data(cfg)
eni.Renderer(debian.Distro.renderer_configs["eni"]).render_network_state(state, target=out)
print(json.dumps(cfg))
'''

#: (seed source, network-data, the interfaces (name, MAC), reference kind,
#: what the rendered file must hold beyond the fallback)
CASES = {
    "configdrive": ("ConfigDrive", openstack.NETWORK_DATA,
                    [("eth0", "fa:16:3e:2a:4b:01"), ("eth1", "fa:16:3e:2a:4b:02")],
                    "openstack", ["iface eth1 inet static", "10.20.0.15", "10.30.0.0"]),
    "openstack": ("OpenStack", openstack.NETWORK_DATA,
                  [("eth0", "fa:16:3e:2a:4b:01"), ("eth1", "fa:16:3e:2a:4b:02")],
                  "openstack", ["iface eth1 inet static", "10.20.0.15"]),
    "ec2": ("EC2", {"interfaces": {"macs": {
                n["mac"]: {k: (v.split("\n") if "\n" in v else v) for k, v in n.items()
                           if k in ("device-number", "network-card", "local-ipv4s", "ipv6s",
                                    "subnet-ipv4-cidr-block", "subnet-ipv6-cidr-blocks")}
                for n in ec2.TWO_NICS}}},
            [("eth0", "06:5f:3a:9b:10:01"), ("eth1", "06:5f:3a:9b:10:02")],
            "ec2", ["iface eth1 inet dhcp", "172.31.10.6/20", "iface eth0 inet6 dhcp"]),
}

META = {"instance-id": "i-0abc", "local-hostname": "cvm-net"}


def _local_stage(machine, source: str | None, network_data: bytes | None,
                 kind: str | None = None):
    if source is not None:
        machine.write_seed(source, "#cloud-config\n{}\n", META)
    if network_data is not None:
        path = machine.seed_dir / "network-data"
        path.write_bytes(network_data)
        path.chmod(0o600)
    commands: list[tuple[str, ...]] = [("init", "--local")]
    if kind is not None:
        (machine.dir / "mnt-rw" / "reference.py").write_text(REFERENCE)
        commands.append(("--python", "/mnt/.rw/reference.py", kind,
                         "/mnt/.rw/context/network-data", "/mnt/.rw/reference"))
    result = machine.run(*commands)
    local = result.stages[0]
    assert local.returncode == 0, local.stderr[-1500:]
    assert "Traceback" not in machine.log, machine.log
    rendered = machine.dir / "etc-network" / ENI
    return result, (rendered.read_text() if rendered.exists() else None)


# (OpenStack's metadata service: test_the_stages_seed_end_to_end)
@pytest.mark.parametrize("case", ["configdrive", "ec2"])
def test_rendered_as_cloud_inits_own_datasource_renders_it(machine_factory, release, case):
    source, data, nics, kind, wanted = CASES[case]
    machine = machine_factory(nics=nics, extra_config=NETWORK_ON)
    result, ours = _local_stage(machine, source, json.dumps(data).encode(), kind)
    ref_stage = result.stages[1]
    assert ref_stage.returncode == 0, ref_stage.stderr[-2000:]
    reference = (machine.dir / "mnt-rw" / "reference" / "etc" / "network" / ENI).read_text()
    assert ours is not None, machine.log
    assert ours == reference, f"cloud-init {release}:\n{ours}\n---\n{reference}"
    for text in wanted:
        assert text in ours, ours
    assert cernvm_warnings(machine) == []
    assert "network config version" in machine.log


def test_no_network_data_keeps_the_fallback(machine_factory, release):
    machine = machine_factory(nics=[("eth0", "fa:16:3e:2a:4b:01")], extra_config=NETWORK_ON)
    _result, ours = _local_stage(machine, "ConfigDrive", None)
    assert ours is not None and "iface eth0 inet dhcp" in ours, ours
    assert "static" not in ours
    assert cernvm_warnings(machine) == []


def test_invalid_network_data_is_one_warning_and_the_fallback(machine_factory, release):
    machine = machine_factory(nics=[("eth0", "fa:16:3e:2a:4b:01")], extra_config=NETWORK_ON)
    _result, ours = _local_stage(machine, "OpenStack", b'{"links": [ {"id": ')
    assert ours is not None and "iface eth0 inet dhcp" in ours, ours
    warnings = cernvm_warnings(machine)
    assert len(warnings) == 1 and "network-data: not valid JSON" in warnings[0], warnings
    assert "fallback network config (DHCP" in warnings[0]


def test_unconvertible_network_data_is_one_warning(machine_factory, release):
    """EC2 metadata without device-number: 20.4's converter raises KeyError."""
    machine = machine_factory(nics=[("eth0", "06:5f:3a:9b:10:01")], extra_config=NETWORK_ON)
    bad = {"interfaces": {"macs": {"06:5f:3a:9b:10:01": "not an object"}}}
    _result, ours = _local_stage(machine, "EC2", json.dumps(bad).encode())
    assert ours is not None and "iface eth0 inet dhcp" in ours, ours
    warnings = cernvm_warnings(machine)
    assert len(warnings) == 1 and "no EC2 interface metadata" in warnings[0], warnings


def test_network_config_disabled_is_respected(machine_factory, release):
    off = {**NETWORK_ON, "network": {"config": "disabled"}}
    machine = machine_factory(nics=CASES["configdrive"][2], extra_config=off)
    _result, ours = _local_stage(machine, "ConfigDrive",
                                 json.dumps(openstack.NETWORK_DATA).encode())
    assert ours is None  # nothing rendered
    assert cernvm_warnings(machine) == []
    assert "network config version" not in machine.log  # not even converted


@pytest.mark.parametrize("provider", ["EC2", "OpenStack"])
def test_the_stages_seed_end_to_end(machine_factory, release, tmp_path, provider):
    """The microboot stage against the fake service, then the local stage on
    the seed it wrote: the same file as the release's own converter renders."""
    stage = tmp_path / "stage"
    dmi = {"EC2": {"sys_vendor": "Amazon EC2"}, "OpenStack": {"product_name": "OpenStack Nova"}}
    with MetadataService(provider, b"#cloud-config\n{}\n",
                         instance=Instance(nics=ec2.TWO_NICS,
                                           network_data=openstack.NETWORK_DATA)) as svc:
        run = run_fetch(busybox_path(tmp_path / "bb"), stage, StageMachine(dmi=dmi[provider]),
                        svc.url)
    assert run.rc == 0, run.stderr
    case = CASES["ec2" if provider == "EC2" else "openstack"]
    machine = machine_factory(nics=case[2], extra_config=NETWORK_ON)
    shutil.copytree(run.seed, machine.seed_dir)
    result, ours = _local_stage(machine, None, None, case[3])
    assert result.stages[1].returncode == 0, result.stages[1].stderr[-2000:]
    reference = (machine.dir / "mnt-rw" / "reference" / "etc" / "network" / ENI).read_text()
    assert ours == reference, f"cloud-init {release}:\n{ours}\n---\n{reference}"
    for text in case[4]:
        assert text in ours, ours
    assert cernvm_warnings(machine) == []
