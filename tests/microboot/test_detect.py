"""Recognition: the same cases through fetch-context --detect (busybox sh)
and cloudinit_cernvm.detect (Python), both reading microboot/rules."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from cloudinit_cernvm.detect import RULES, Detection, detect, load_rules
from cloudinit_cernvm.providers import NAMES

from .conftest import Machine, run_fetch

NOVA = {"sys_vendor": "OpenStack Foundation", "product_name": "OpenStack Nova"}
CASES: dict[str, tuple[Machine, Detection | None]] = {
    "ec2-nitro": (Machine(dmi={"sys_vendor": "Amazon EC2", "product_name": "m5.large"}),
                  Detection("EC2", 'DMI sys_vendor is "Amazon EC2"')),
    "ec2-uuid": (Machine(dmi={"product_uuid": "EC2E1916-9099-7CAF-FD21-012345ABCDEF"}),
                 Detection("EC2", 'DMI product_uuid is "EC2E1916-9099-7CAF-FD21-012345ABCDEF"')),
    "ec2-uuid-swapped": (
        Machine(dmi={"product_uuid": "45E12AEC-DCD1-B213-94ED-012345ABCDEF"}),
        Detection("EC2", 'DMI product_uuid is "45E12AEC-DCD1-B213-94ED-012345ABCDEF"')),
    "ec2-xen": (Machine(hypervisor={"uuid": "ec2e1916-9099-7caf-fd21-012345abcdef"}),
                Detection("EC2", '/sys/hypervisor/uuid is "ec2e1916-9099-7caf-fd21-012345abcdef"')),
    "not-ec2-uuid": (Machine(dmi={"product_uuid": "12345678-1234-2EC1-94ED-012345ABCDEF"}), None),
    "gce-name": (Machine(dmi={"product_name": "Google Compute Engine"}),
                 Detection("GCE", 'DMI product_name is "Google Compute Engine"')),
    "gce-serial": (Machine(dmi={"product_serial": "GoogleCloud-1234ABCD"}),
                   Detection("GCE", 'DMI product_serial is "GoogleCloud-1234ABCD"')),
    "azure": (Machine(dmi={"sys_vendor": "Microsoft Corporation",
                           "chassis_asset_tag": "7783-7084-3265-9085-8269-3286-77"}),
              Detection("Azure", 'DMI chassis_asset_tag is "7783-7084-3265-9085-8269-3286-77"')),
    "azure-cd": (Machine(media={"rd_rdfe_stable.161212-1209": {"ovf-env.xml": b"<x/>"}}),
                 Detection("Azure", 'a disk labelled "rd_rdfe_stable.161212-1209"')),
    "openstack": (Machine(dmi=NOVA),
                  Detection("OpenStack", 'DMI product_name is "OpenStack Nova"')),
    "openstack-rdo": (Machine(dmi={"product_name": "OpenStack Compute"}),
                      Detection("OpenStack", 'DMI product_name is "OpenStack Compute"')),
    "openstack-otc": (Machine(dmi={"chassis_asset_tag": "OpenTelekomCloud"}),
                      Detection("OpenStack", 'DMI chassis_asset_tag is "OpenTelekomCloud"')),
    "openstack-sap": (Machine(dmi={"chassis_asset_tag": "SAP CCloud VM"}),
                      Detection("OpenStack", 'DMI chassis_asset_tag is "SAP CCloud VM"')),
    "openstack-huawei": (Machine(dmi={"chassis_asset_tag": "HUAWEICLOUD"}),
                         Detection("OpenStack", 'DMI chassis_asset_tag is "HUAWEICLOUD"')),
    "openstack-samsung": (
        Machine(dmi={"chassis_asset_tag": "Samsung Cloud Platform"}),
        Detection("OpenStack", 'DMI chassis_asset_tag is "Samsung Cloud Platform"')),
    "config-drive-beats-dmi": (
        Machine(dmi=NOVA, media={"config-2": {"openstack/latest/user_data": b"x"}}),
        Detection("ConfigDrive", 'a disk labelled "config-2" holds openstack')),
    "config-drive-upper": (
        Machine(media={"CONFIG-2": {"openstack/latest/meta_data.json": b"{}"}}),
        Detection("ConfigDrive", 'a disk labelled "CONFIG-2" holds openstack')),
    "config-2-without-openstack": (Machine(media={"config-2": {"other/x": b""}}), None),
    "cloudstack-drive": (
        Machine(media={"config-2": {"cloudstack/userdata/user_data.txt": b"x",
                                    "openstack/latest/user_data": b"x"}}),
        Detection("CloudStack", 'a disk labelled "config-2" holds cloudstack')),
    "cloudstack-dmi": (
        Machine(dmi={"product_name": "CloudStack KVM Hypervisor"}),
        Detection("CloudStack", 'DMI product_name is "CloudStack KVM Hypervisor"')),
    "cloudstack-apache": (
        Machine(dmi={"product_name": "Apache CloudStack KVM Hypervisor"}),
        Detection("CloudStack", 'DMI product_name is "Apache CloudStack KVM Hypervisor"')),
    "opennebula": (Machine(media={"CONTEXT": {"context.sh": b"A=1\n"}}),
                   Detection("OpenNebula", 'a disk labelled "CONTEXT"')),
    "hepix-cd": (Machine(dmi={"sys_vendor": "QEMU"}, media={"cdrom": {"context.sh": b"A=1\n"}}),
                 Detection("OpenNebula", 'a disk labelled "cdrom" holds context.sh')),
    "vsphere": (Machine(dmi={"sys_vendor": "VMware, Inc."},
                        media={"cidata": {"user-data.txt": b"x"}}),
                Detection("vSphere", 'a disk labelled "cidata" holds user-data.txt')),
    "user-data-cd-on-kvm": (Machine(dmi={"sys_vendor": "QEMU"},
                                    media={"cdrom": {"user-data.txt": b"x"}}),
                            Detection("vSphere", 'a disk labelled "cdrom" holds user-data.txt')),
    "user-data-cd-beside-context-sh": (
        Machine(media={"cdrom": {"user-data.txt": b"x", "context.sh": b"A=1\n"}}),
        Detection("OpenNebula", 'a disk labelled "cdrom" holds context.sh')),
    "vmware-without-cd": (Machine(dmi={"sys_vendor": "VMware, Inc."}), None),
    "cmdline-beats-dmi": (
        Machine(dmi={"sys_vendor": "Amazon EC2"}, cmdline="quiet cernvm.source=GCE"),
        Detection("GCE", "kernel command line has cernvm.source=GCE")),
    "cmdline-ci-ds": (Machine(cmdline="ro ci.ds=OpenStack"),
                      Detection("OpenStack", "kernel command line has ci.ds=OpenStack")),
    "cmdline-vmware": (Machine(cmdline="ds=VMware;seedfrom=x"),
                       Detection("vSphere", "kernel command line has ds=VMware;seedfrom=x")),
    "cmdline-other-ds": (Machine(dmi={"product_name": "Google Compute Engine"},
                                 cmdline="ds=lxd;s=http://10.0.0.1/"),
                         Detection("GCE", 'DMI product_name is "Google Compute Engine"')),
    "nocloud-cmdline-beats-dmi": (
        Machine(dmi={"product_name": "Google Compute Engine"},
                cmdline="ds=nocloud;s=http://10.0.0.1/"),
        Detection("NoCloud", "kernel command line has ds=nocloud;s=http://10.0.0.1/")),
    "nocloud-net-cmdline": (Machine(cmdline="ro ds=nocloud-net;s=http://10.0.0.1/ quiet"),
                            Detection("NoCloud", "kernel command line has "
                                      "ds=nocloud-net;s=http://10.0.0.1/")),
    "nocloud-serial": (Machine(dmi={"sys_vendor": "QEMU",
                                    "product_serial": "ds=nocloud;s=http://10.0.0.1/x/"}),
                       Detection("NoCloud", 'DMI product_serial is "ds=nocloud;s=http://10.0.0.1/x/"')),
    "nocloud-cidata": (Machine(dmi=NOVA, media={"cidata": {"meta-data": b"instance-id: a\n",
                                                           "user-data": b""}}),
                       Detection("NoCloud", 'a disk labelled "cidata" holds meta-data')),
    "nocloud-CIDATA": (Machine(media={"CIDATA": {"meta-data": b"{}"}}),
                       Detection("NoCloud", 'a disk labelled "CIDATA" holds meta-data')),
    "cmdline-unknown": (Machine(cmdline="cernvm.source=nowhere"), None),
    "nothing": (Machine(dmi={"sys_vendor": "QEMU", "product_name": "Standard PC"}), None),
}


def sh_detect(bbpath: Path, top: Path, machine: Machine) -> Detection | None:
    """fetch-context --detect: PROVIDER<TAB>EVIDENCE, exit 1 for none."""
    run = run_fetch(bbpath, top, machine, args=["--detect"])
    if run.rc == 1:
        assert run.stdout == ""
        return None
    assert run.rc == 0, run.stderr
    provider, evidence = run.stdout.rstrip("\n").split("\t")
    return Detection(provider, evidence)


def py_detect(_bbpath: Path, top: Path, machine: Machine) -> Detection | None:
    root, media = machine.build(top)
    return detect(str(root), str(media))


@pytest.mark.parametrize("impl", [sh_detect, py_detect], ids=["sh", "python"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_detect(case: str, impl, bbpath: Path, tmp_path: Path) -> None:
    machine, expected = CASES[case]
    assert impl(bbpath, tmp_path, machine) == expected


def test_rules_name_only_known_providers() -> None:
    rules = load_rules()
    assert {r.provider for r in rules} == set(NAMES)
    assert all(c.kind in {"cmdline", "dmi", "hypervisor", "label"}
               for r in rules for c in r.conditions)


def test_both_read_the_same_table(bbpath: Path, tmp_path: Path) -> None:
    """A rule added to the table changes both implementations alike."""
    micro = tmp_path / "microboot"
    shutil.copytree(RULES.parent, micro)
    rules = micro / "rules"
    rules.write_text("vSphere dmi product_name Made Up Cloud*\n" + rules.read_text())
    machine = Machine(dmi={"product_name": "Made Up Cloud 3"})
    root, media = machine.build(tmp_path / "m")
    want = Detection("vSphere", 'DMI product_name is "Made Up Cloud 3"')
    assert detect(str(root), str(media), rules=rules) == want
    out = subprocess.run([str(bbpath / "sh"), str(micro / "fetch-context"), "--detect"],
                         env={"PATH": str(bbpath), "CERNVM_SYSROOT": str(root),
                              "CERNVM_MEDIA_DIR": str(media)},
                         capture_output=True, text=True, timeout=30, check=False)
    assert out.stdout == "vSphere\tDMI product_name is \"Made Up Cloud 3\"\n"


def test_env_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, media = Machine(media={"CONTEXT": {"context.sh": b""}}).build(tmp_path)
    monkeypatch.setenv("CERNVM_SYSROOT", str(root))
    monkeypatch.setenv("CERNVM_MEDIA_DIR", str(media))
    assert detect() == Detection("OpenNebula", 'a disk labelled "CONTEXT"')


def test_real_disks_come_from_blkid_without_its_cache(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Image files blkid once probed (its cache lists them) are no disks."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    listing = tmp_path / "listing"
    fake = bin_dir / "blkid"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\ncat {listing}\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.delenv("CERNVM_MEDIA_DIR", raising=False)
    root = tmp_path / "root"
    (root / "proc").mkdir(parents=True)
    (root / "proc/cmdline").write_text("quiet\n")

    listing.write_text("DEVNAME=/tmp/old/fat.img\nLABEL=CONTEXT\nTYPE=vfat\n")
    assert detect(sysroot=str(root)) is None
    assert "-c /dev/null" in calls.read_text()

    listing.write_text("DEVNAME=/tmp/old/fat.img\nLABEL=CONTEXT\nTYPE=vfat\n\n"
                       "DEVNAME=/dev/sr0\nLABEL=CONTEXT\nTYPE=iso9660\n")
    found = detect(sysroot=str(root))
    assert found is not None and found.provider == "OpenNebula"
