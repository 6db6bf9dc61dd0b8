"""No seed: the CernVM datasource hands over to cloud-init's own datasource
for the provider the machine shows, under real cloud-init, every release."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.cloudinit.helpers import assert_clean_boot, cernvm_warnings
from tests.harness import sandbox

FAKE_AMICONFIG = sandbox.REPO / "tests" / "fakes" / "amiconfig"
OLD_SYNTAX = (
    "[amiconfig]\nplugins = condor\n[cernvm]\norganisations = cms\n"
    "#cloud-config\n"
    "runcmd:\n"
    " - [sh, -c, 'echo ran >> /var/log/runcmd-count']\n"
)
AMICONFIG_PART = "[amiconfig]\nplugins = condor\n[cernvm]\norganisations = cms\n"
CD_UUID = "d8e02d56-2648-49a3-bf97-6be8f1204f38"
#: an EC2 instance as cloud-init's own platform check knows it (20.4 wants the
#: UUID starting with ec2 and equal to the serial); the rule table takes the vendor
EC2_DMI = {
    "sys_vendor": "Amazon EC2",
    "product_uuid": "ec2e1916-9099-7caf-fd21-012345abcdef",
    "product_serial": "ec2e1916-9099-7caf-fd21-012345abcdef",
    "product_name": "t3.micro",
    "product_version": "",
    "bios_vendor": "Amazon EC2",
    "chassis_asset_tag": "Amazon EC2",
    "chassis_vendor": "Amazon EC2",
    "board_vendor": "Amazon EC2",
}


def fallback_machine(machine_factory, **kwargs) -> sandbox.Machine:
    """A machine whose amiconfig is the stand-in that records what it got."""
    machine = machine_factory(
        extra_config={"datasource": {"CernVM": {
            "amiconfig_command": f"{FAKE_AMICONFIG} -c {FAKE_AMICONFIG}-default.cfg",
            "amiconfig_done_file": "/var/log/amiconfig-user.done"}}},
        **kwargs)
    (machine.dir / "var-log" / "fake-amiconfig").mkdir()
    return machine


def write_config_drive(machine: sandbox.Machine, user_data: str) -> None:
    """A config drive as cloud-init's ConfigDrive reads it from its seed directory."""
    top = machine.cloud_dir / "seed" / "config_drive" / "openstack" / "latest"
    top.mkdir(parents=True)
    (top / "meta_data.json").write_text(json.dumps({
        "uuid": CD_UUID, "hostname": "cd-worker", "name": "cd-worker",
        "availability_zone": "nova",
        "public_keys": {"k": "ssh-ed25519 AAAAC3Nza cd@example\n"}}))
    (top / "user_data").write_text(user_data)


def all_warnings(machine: sandbox.Machine) -> list[str]:
    return [line for line in machine.log.splitlines() if "[WARNING]" in line]


def assert_old_syntax_handled(machine: sandbox.Machine) -> None:
    """The ini sections reached amiconfig, the cloud-config ran once."""
    assert "Unhandled" not in machine.log
    payload = (machine.instance_dir / "cernvm" / "amiconfig-user-data").read_text()
    assert payload == AMICONFIG_PART
    count = machine.dir / "var-log" / "runcmd-count"
    assert count.read_text() == "ran\n"


def test_no_seed_on_a_config_drive_falls_back_to_configdrive(machine_factory):
    machine = fallback_machine(machine_factory,
                               cmdline=sandbox.DEFAULT_CMDLINE + " cernvm.source=configdrive")
    write_config_drive(machine, OLD_SYNTAX)
    result = machine.boot()
    assert_clean_boot(machine, result)
    v1 = result.v1
    assert v1["platform"] == "cernvm"
    assert v1["subplatform"] == "fallback (ConfigDrive: /var/lib/cloud/seed/config_drive)"
    assert v1["cloud_name"] == "openstack"
    assert v1["instance_id"] == CD_UUID
    assert v1["local_hostname"] == "cd-worker"
    assert [k.strip() for k in v1["public_ssh_keys"]] == ["ssh-ed25519 AAAAC3Nza cd@example"]
    assert_old_syntax_handled(machine)
    # read in the local stage: a disk needs no network
    assert "falling back to cloud-init's ConfigDrive datasource" in machine.log
    warnings = cernvm_warnings(machine)
    assert len(warnings) == 1, warnings
    assert "no seed directory /mnt/.rw/context" in warnings[0]
    assert "microboot stage did not do its job" in warnings[0]
    assert all_warnings(machine) == warnings
    assert_unpickles_without_the_delegate(machine)
    # the next boot falls back again to the same instance: nothing per-instance reruns
    result = machine.boot()
    assert_clean_boot(machine, result)
    assert result.v1["instance_id"] == CD_UUID
    assert (machine.dir / "var-log" / "runcmd-count").read_text() == "ran\n"
    assert len(list((machine.cloud_dir / "instances").iterdir())) == 1


def assert_unpickles_without_the_delegate(machine: sandbox.Machine) -> None:
    """Later stages unpickle plain data: neither the delegate's module nor the
    detection, seed or conversion modules are imported."""
    release = machine.release
    pkl = machine.instance_dir / "obj.pkl"
    code = (
        "import pickle, sys\n"
        f"ds = pickle.load(open({str(pkl)!r}, 'rb'))\n"
        "assert type(ds).__name__ == 'DataSourceCernVM', ds\n"
        "assert ds.get_instance_id() == sys.argv[1], ds.get_instance_id()\n"
        "assert ds.subplatform.startswith('fallback (ConfigDrive'), ds.subplatform\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('cloudinit'))))\n"
    )
    env = {"PYTHONPATH": f"{sandbox.site_packages(release)}:{sandbox.REPO}",
           "PATH": "/usr/bin:/bin"}
    done = subprocess.run([str(sandbox.python_for(release)), "-c", code, CD_UUID],
                          capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.split())
    assert "cloudinit_cernvm.DataSourceCernVM" in loaded
    assert not loaded & {"cloudinit_cernvm.seed", "cloudinit_cernvm.userdata",
                         "cloudinit_cernvm.detect", "cloudinit_cernvm.fallback",
                         "cloudinit.sources.DataSourceConfigDrive"}, loaded


def test_the_marker_of_a_failed_stage_falls_back_too(machine_factory):
    machine = fallback_machine(machine_factory,
                               cmdline=sandbox.DEFAULT_CMDLINE + " cernvm.source=configdrive")
    machine.write_seed("ConfigDrive", None)  # source alone: recognised, then failed
    write_config_drive(machine, OLD_SYNTAX)
    result = machine.boot(sandbox.BOOT_STAGES[:2])
    assert_clean_boot(machine, result)
    assert result.v1["subplatform"].startswith("fallback (ConfigDrive: ")
    # converted from old syntax (the whole boot is checked above)
    given = (machine.instance_dir / "user-data.txt").read_text()
    assert "Content-Type: text/amiconfig" in given and "Content-Type: text/cloud-config" in given
    warnings = cernvm_warnings(machine)
    assert len(warnings) == 1, warnings
    assert "recognised ConfigDrive but fetched no user-data" in warnings[0]


def test_an_empty_user_data_file_is_still_a_seed(machine_factory):
    """Empty user-data means the provider had none: no fallback, no warning."""
    machine = fallback_machine(machine_factory,
                               cmdline=sandbox.DEFAULT_CMDLINE + " cernvm.source=configdrive")
    machine.write_seed("ConfigDrive", "")
    write_config_drive(machine, OLD_SYNTAX)
    result = machine.boot(sandbox.BOOT_STAGES[:2])
    assert_clean_boot(machine, result)
    assert result.v1["subplatform"] == "seed-dir (/mnt/.rw/context)"
    assert result.v1["instance_id"] != CD_UUID
    assert cernvm_warnings(machine) == []
    assert "falling back" not in machine.log


def test_no_seed_on_ec2_falls_back_to_ec2_in_the_network_stage(machine_factory, tmp_path):
    machine = fallback_machine(machine_factory, dmi=EC2_DMI)
    user_data = tmp_path / "user-data"
    user_data.write_text(OLD_SYNTAX)
    machine.add_service(
        ["-m", "tests.fakes.metadata", "--provider", "EC2", "--user-data", str(user_data),
         "--host", "169.254.169.254", "--port", "80", "--lifetime", "300"],
        address="169.254.169.254")
    result = machine.boot()
    assert_clean_boot(machine, result)
    v1 = result.v1
    assert v1["platform"] == "cernvm"
    assert v1["subplatform"] == "fallback (Ec2: http://169.254.169.254)"
    assert v1["cloud_name"] == "aws"
    assert v1["instance_id"] == "i-0123456789abcdef0"
    assert v1["availability_zone"] == "eu-west-1a"
    assert v1["region"] == "eu-west-1"
    assert_old_syntax_handled(machine)
    # the local stage left it to the network stage, at INFO
    assert "cloud-init's Ec2 datasource reads it in the network stage" in machine.log
    warnings = cernvm_warnings(machine)
    assert len(warnings) == 1, warnings
    assert "microboot stage did not do its job" in warnings[0]
    assert all_warnings(machine) == warnings
    served = machine.service_log()
    assert "/user-data 200" in served, served  # the dated path cloud-init asks for


def test_no_seed_and_no_provider_declines_quietly(machine):
    result = machine.boot(sandbox.BOOT_STAGES[:2])
    assert_clean_boot(machine, result)
    assert result.v1["platform"] != "cernvm"
    assert cernvm_warnings(machine) == []
    assert "no provider recognised: nothing to fall back to" in machine.log


def test_no_seed_on_vsphere_says_there_is_no_delegate(machine_factory):
    machine = machine_factory(cmdline=sandbox.DEFAULT_CMDLINE + " cernvm.source=vsphere")
    result = machine.boot(sandbox.BOOT_STAGES[:2])
    assert_clean_boot(machine, result)
    assert result.v1["platform"] != "cernvm"
    warnings = cernvm_warnings(machine)
    assert len(warnings) == 1, warnings  # in the network stage, the last one that looks
    assert "no datasource that reads its context" in warnings[0]


def test_the_marker_on_a_machine_without_a_provider_is_one_warning(machine):
    machine.write_seed("EC2", None)
    result = machine.boot(sandbox.BOOT_STAGES[:2])
    assert_clean_boot(machine, result)
    assert result.v1["platform"] != "cernvm"
    warnings = cernvm_warnings(machine)
    assert len(warnings) == 1, warnings
    assert "recognised EC2 but fetched no user-data" in warnings[0]
    assert "shows no provider either" in warnings[0]


def ec2_with_fault(machine_factory, tmp_path, fault: str) -> sandbox.Machine:
    """An EC2 machine whose metadata service at 169.254.169.254 has FAULT.

    A 503 only from 25.1 on: before, cloud-init's own Ec2 gives up at the
    first 503 on the token (20.4: "Fatal error while requesting Ec2 IMDSv2 API
    tokens"), so there is nothing to wait out."""
    probe = machine_factory()
    if fault.startswith("503") and sandbox.version_key(probe.release) < (25, 1):
        pytest.skip(f"cloud-init {probe.release}'s own Ec2 does not wait out a 503")
    machine = fallback_machine(machine_factory, dmi=EC2_DMI)
    user_data = tmp_path / "user-data"
    user_data.write_text(OLD_SYNTAX)
    machine.add_service(
        ["-m", "tests.fakes.metadata", "--provider", "EC2", "--user-data", str(user_data),
         "--host", "169.254.169.254", "--port", "80", "--lifetime", "300", "--fault", fault],
        address="169.254.169.254")
    return machine


def test_after_a_silent_service_the_delegate_waits_briefly(machine_factory, tmp_path):
    """The stage found the service silent for its whole budget: cloud-init's
    Ec2 is not given its own two minutes again (about 120 s measured)."""
    machine = ec2_with_fault(machine_factory, tmp_path, "silent")
    machine.write_seed("EC2", None)
    (machine.seed_dir / "failure").write_text("silent: connected, no answer (4 requests in 19 s)\n")
    (machine.seed_dir / "failure").chmod(0o600)
    result = machine.boot(sandbox.BOOT_STAGES[:2])
    assert_clean_boot(machine, result)
    network = result.stage("init")
    assert network.seconds < 20, network.seconds
    assert result.v1["platform"] != "cernvm"
    assert "waits at most 5 s" in machine.log
    warnings = cernvm_warnings(machine)
    assert len(warnings) == 1, warnings
    assert "recognised EC2 but fetched no user-data" in warnings[0]
    assert "silent: connected, no answer (4 requests in 19 s)" in warnings[0]


def test_after_a_loaded_service_the_delegate_has_its_own_patience(machine_factory, tmp_path):
    """503 past the stage's budget: cloud-init's Ec2 waits it out, and the
    context is read, converted and handled."""
    machine = ec2_with_fault(machine_factory, tmp_path, "503:8")
    machine.write_seed("EC2", None)
    (machine.seed_dir / "failure").write_text("unavailable: status 503 (12 requests in 16 s)\n")
    (machine.seed_dir / "failure").chmod(0o600)
    result = machine.boot()
    assert_clean_boot(machine, result)
    assert result.v1["subplatform"] == "fallback (Ec2: http://169.254.169.254)"
    assert_old_syntax_handled(machine)
    warnings = cernvm_warnings(machine)
    assert len(warnings) == 1, warnings
    assert "unavailable: status 503" in warnings[0]
    assert "the context was read by cloud-init's Ec2 datasource instead" in warnings[0]
    assert " 503 503" in machine.service_log()  # the fault was met, and waited out


def test_a_delegate_that_never_finishes_reading_is_cut_at_its_limit(machine_factory, tmp_path):
    """A body at one byte a second outlives every wait cloud-init's Ec2 has
    (each bounds the wait for an answer, not its reading): the delegate's
    wall-clock limit ends it, with one warning, and the boot goes on."""
    machine = fallback_machine(machine_factory, dmi=EC2_DMI)
    config = machine.dir / "etc-cloud" / "cloud.cfg.d" / "98_limit.cfg"
    config.write_text("datasource:\n  CernVM:\n    fallback_timeout: 6\n")
    user_data = tmp_path / "user-data"
    user_data.write_text(OLD_SYNTAX)
    machine.add_service(
        ["-m", "tests.fakes.metadata", "--provider", "EC2", "--user-data", str(user_data),
         "--host", "169.254.169.254", "--port", "80", "--lifetime", "300", "--fault", "slow"],
        address="169.254.169.254")
    result = machine.boot(sandbox.BOOT_STAGES[:2])
    assert_clean_boot(machine, result)
    assert result.stage("init").seconds < 40, result.stage("init").seconds
    assert result.v1["platform"] != "cernvm"
    warnings = cernvm_warnings(machine)
    assert len(warnings) == 1, warnings
    assert "cloud-init's Ec2 datasource did not finish within 6 s" in warnings[0]
    assert "booting without user-data" in warnings[0]
