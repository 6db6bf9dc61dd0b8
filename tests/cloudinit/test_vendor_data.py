"""The provider's vendor-data from the seed, under real cloud-init (every
supported release): handed over as cloud-init's own OpenStack datasources
hand it (``convert_vendordata`` of vendor_data.json), so that cloud-init's
``vendor_data: {enabled: false}`` switch and its order (user-data over
vendor-data2 over vendor-data) apply; bad vendor-data is one warning, and
the boot and the user's context go on."""

from __future__ import annotations

import json
import stat

from tests.cloudinit.helpers import assert_clean_boot, cernvm_warnings
from tests.harness import sandbox

META = {"instance-id": "d8e02d56-2648-49a3-bf97-6be8f1204f38", "local-hostname": "vm1"}


def runcmd(tag: str) -> str:
    """A cloud-config whose runcmd leaves /var/log/ran-TAG."""
    return f"#cloud-config\nruncmd:\n - [sh, -c, 'echo {tag} >> /var/log/ran-{tag}']\n"


def site(cloud_config: object, **more: object) -> bytes:
    """vendor_data.json as nova serves it: the cloud-init item beside the site's own."""
    return json.dumps({"cloud-init": cloud_config, "proxy": "http://squid.site:3128",
                       **more}).encode()


def seed(machine: sandbox.Machine, user_data: str, **vendor: bytes) -> None:
    """A ConfigDrive seed with the vendor-data files given (vendor_data2=...)."""
    path = machine.write_seed("ConfigDrive", user_data, META)
    for key, data in vendor.items():
        f = path / key.replace("_", "-")
        f.write_bytes(data)
        f.chmod(0o600)


def ran(machine: sandbox.Machine) -> set[str]:
    return {p.name[4:] for p in (machine.dir / "var-log").glob("ran-*")}


def has_vendordata2(machine: sandbox.Machine) -> bool:
    """cloud-init 21.4 brought vendor-data2."""
    return sandbox.version_key(machine.release) >= (21, 4)


def test_vendor_cloud_config_is_applied(machine):
    seed(machine, "", vendor_data=site(runcmd("vendor")))
    result = machine.boot()
    assert_clean_boot(machine, result)
    assert ran(machine) == {"vendor"}
    assert cernvm_warnings(machine) == []
    # what cloud-init keeps of it is private, as its user-data
    kept = machine.instance_dir / "vendor-data.txt"
    assert "ran-vendor" in kept.read_text()
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert "squid.site" not in (machine.run_dir / "cloud-init" / "instance-data.json").read_text()


def test_vendor_data_as_a_json_string_and_a_script(machine):
    """vendor_data.json may be a bare string; a script part runs from scripts-vendor."""
    seed(machine, "", vendor_data=json.dumps(
        "#!/bin/sh\necho script >> /var/log/ran-script\n").encode())
    result = machine.boot()
    assert_clean_boot(machine, result)
    assert ran(machine) == {"script"}


def test_the_users_switch_turns_vendor_data_off(machine):
    seed(machine, "#cloud-config\nvendor_data: {enabled: false}\n",
         vendor_data=site(runcmd("vendor")), vendor_data2=site(runcmd("vendor2")))
    result = machine.boot()
    assert_clean_boot(machine, result)
    if has_vendordata2(machine):  # vendor_data2 has a switch of its own
        assert ran(machine) == {"vendor2"}
    else:
        assert ran(machine) == set()


def test_user_data_wins_over_vendor_data(machine):
    """The user's runcmd replaces the site's; the site's bootcmd, which the
    user does not set, still runs (cloud-init merges the two configs)."""
    vendor = runcmd("vendor") + "bootcmd:\n - [sh, -c, 'echo b >> /var/log/ran-vendorboot']\n"
    # vendor_data2.json with nothing for cloud-init (nova's {} and the like): none
    seed(machine, runcmd("user"), vendor_data=site(vendor),
         vendor_data2=b'{"other": {"x": 1}, "cloud-init": null}')
    result = machine.boot()
    assert_clean_boot(machine, result)
    assert ran(machine) == {"user", "vendorboot"}
    assert cernvm_warnings(machine) == []


def test_vendor_data2_where_the_release_has_it(machine):
    """vendor_data2.json (nova's dynamic vendor-data) over vendor_data.json, from 21.4."""
    seed(machine, "", vendor_data=site(runcmd("vendor")), vendor_data2=site(runcmd("vendor2")))
    result = machine.boot()
    assert_clean_boot(machine, result)
    assert cernvm_warnings(machine) == []
    if has_vendordata2(machine):
        assert ran(machine) == {"vendor2"}
    else:
        assert ran(machine) == {"vendor"}
        assert "vendor-data2 not handed over: this cloud-init reads no vendor-data2" \
            in machine.log


def test_bad_vendor_data_is_one_warning_and_the_boot_goes_on(machine):
    broken = b'{"cloud-init": "#cloud-config\\nruncmd: [[reboot]]'
    seed(machine, runcmd("user"), vendor_data=broken,
         vendor_data2=site({"not": "a string"}))
    result = machine.boot()
    assert_clean_boot(machine, result)
    assert ran(machine) == {"user"}
    warnings = cernvm_warnings(machine)
    vd = [w for w in warnings if "/vendor-data:" in w]
    assert len(vd) == 1 and "not valid JSON" in vd[0] and "the file is kept" in vd[0], warnings
    vd2 = [w for w in warnings if "/vendor-data2:" in w]
    if has_vendordata2(machine):
        assert len(vd2) == 1 and "cannot be dict" in vd2[0], warnings
    assert len(warnings) == len(vd) + len(vd2), warnings
    assert (machine.seed_dir / "vendor-data").read_bytes() == broken
