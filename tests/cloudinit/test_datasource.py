"""The CernVM datasource under real cloud-init, on every supported release."""

from __future__ import annotations

import hashlib
import json
import stat
import subprocess
import sys

import pytest

from tests.cloudinit.helpers import assert_clean_boot, cernvm_warnings
from tests.harness import sandbox

CLOUD_CONFIG = (
    "#cloud-config\n"
    "runcmd:\n"
    " - [sh, -c, 'echo ran >> /var/log/runcmd-count']\n"
)
META = {
    "instance-id": "i-0123456789abcdef0",
    "local-hostname": "cvm-worker-17",
    "public-keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKey user@host"],
    "availability-zone": "eu-west-1a",
    "region": "eu-west-1",
}


def seed_digest(machine: sandbox.Machine) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() + oct(p.stat().st_mode)
        for p in sorted(machine.seed_dir.iterdir())
    }


def runcmd_count(machine: sandbox.Machine) -> int:
    path = machine.dir / "var-log" / "runcmd-count"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_every_supported_release_is_unpacked():
    missing = set(sandbox.wanted_releases()) - set(sandbox.releases())
    assert not missing, f"cloud-init releases not unpacked: {sorted(missing)}; run tools/bootstrap"


def test_full_seed_reports_provider_and_meta_data(machine):
    machine.write_seed("EC2", CLOUD_CONFIG, META)
    before = seed_digest(machine)
    result = machine.boot()
    assert_clean_boot(machine, result)
    v1 = result.v1
    assert v1["platform"] == "cernvm"
    assert v1["cloud_name"] == "aws"
    assert v1["subplatform"] == "seed-dir (/mnt/.rw/context)"
    assert v1["instance_id"] == META["instance-id"]
    assert v1["local_hostname"] == META["local-hostname"]
    assert v1["region"] == "eu-west-1"
    assert v1["availability_zone"] == "eu-west-1a"
    assert v1["public_ssh_keys"] == META["public-keys"]
    assert runcmd_count(machine) == 1, "the cloud-config of the seed did not run"
    # found in the local stage, user-data consumed in the network stage
    assert "not in local mode" in machine.log
    # the raw seed is kept as it was; what cloud-init writes stays private
    assert seed_digest(machine) == before
    for name in ("user-data.txt", "user-data.txt.i"):
        mode = stat.S_IMODE((machine.instance_dir / name).stat().st_mode)
        assert mode == 0o600, f"{name} is {mode:o}"
    # never a metadata request: the sandbox has no network, and the log
    # shows no URL read at all
    assert "url_helper" not in machine.log and "169.254" not in machine.log


@pytest.mark.parametrize(
    ("source", "cloud_name"),
    # the whole mapping is checked in tests/unit/test_seed.py
    [("ConfigDrive", "openstack"), ("ec2", "aws")],
)
def test_cloud_name_follows_the_marker(machine, source, cloud_name):
    machine.write_seed(source, "")
    result = machine.boot(sandbox.BOOT_STAGES[:2])
    assert_clean_boot(machine, result)
    assert result.v1["cloud_name"] == cloud_name


def test_legacy_ucernvm_seed_uses_the_dmi_uuid_and_survives_reboot(machine_factory):
    uuid = "4C4C4544-0051-3510-8051-B4C04F4E3732"
    machine = machine_factory(dmi={"product_uuid": uuid, "sys_vendor": "QEMU"})
    machine.write_seed("OpenNebula", CLOUD_CONFIG,
                       ucontext="_UCONTEXT_CVMFS_BRANCH=cernvm-prod.cern.ch\n")
    result = machine.boot()
    assert_clean_boot(machine, result)
    assert result.v1["instance_id"] == uuid.lower()
    # a second boot of the same instance: same id, per-instance work not redone
    result = machine.boot()
    assert_clean_boot(machine, result)
    assert result.v1["instance_id"] == uuid.lower()
    assert runcmd_count(machine) == 1
    assert len(list((machine.cloud_dir / "instances").iterdir())) == 1


def test_without_meta_data_or_dmi_the_id_is_a_digest_of_the_seed(machine):
    machine.write_seed("CloudStack", CLOUD_CONFIG)
    result = machine.boot()
    assert_clean_boot(machine, result)
    first = result.v1["instance_id"]
    assert first.startswith("cernvm-")
    result = machine.boot()
    assert_clean_boot(machine, result)
    assert result.v1["instance_id"] == first
    assert runcmd_count(machine) == 1
    # a new context is a new instance: its per-instance work runs
    machine.write_seed("CloudStack", CLOUD_CONFIG + "# another context\n")
    result = machine.boot()
    assert_clean_boot(machine, result)
    assert result.v1["instance_id"] != first
    assert runcmd_count(machine) == 2


def test_empty_user_data_is_a_seed(machine):
    machine.write_seed("EC2", b"", {"instance-id": "i-empty"})
    result = machine.boot()
    assert_clean_boot(machine, result)
    assert (result.v1["instance_id"], result.v1["platform"]) == ("i-empty", "cernvm")


def test_no_seed_declines_cleanly(machine):
    result = machine.boot(sandbox.BOOT_STAGES[:2])
    assert_clean_boot(machine, result)
    assert result.v1["platform"] != "cernvm"
    assert cernvm_warnings(machine) == []


def test_mime_seed_runs_every_part(machine):
    mime = (
        'Content-Type: multipart/mixed; boundary="XYZ"\nMIME-Version: 1.0\n\n'
        "--XYZ\nContent-Type: text/cloud-config\n\n" + CLOUD_CONFIG +
        "--XYZ\nContent-Type: text/x-shellscript\n\n"
        "#!/bin/sh\necho script >> /var/log/script-ran\n"
        "--XYZ--\n"
    )
    machine.write_seed("OpenStack", mime, {"instance-id": "i-mime"})
    assert_clean_boot(machine, machine.boot())
    assert runcmd_count(machine) == 1
    assert (machine.dir / "var-log" / "script-ran").read_text() == "script\n"


def test_settings_seed_dir_and_local_dsmode(machine_factory):
    machine = machine_factory(
        extra_config={"datasource": {"CernVM": {"seed_dir": "/var/lib/cloud/seed/cvm",
                                                "dsmode": "local"}}}
    )
    seed = machine.cloud_dir / "seed" / "cvm"
    seed.mkdir(parents=True, mode=0o700)
    (seed / "source").write_text("GCE\n")
    (seed / "user-data").write_text(CLOUD_CONFIG)
    result = machine.boot()
    assert_clean_boot(machine, result)
    assert result.v1["subplatform"] == "seed-dir (/var/lib/cloud/seed/cvm)"
    assert "is in local mode, will apply init modules now" in machine.log


def test_handler_shim_is_put_back_after_clean(machine):
    machine.write_seed("EC2", CLOUD_CONFIG, META)
    assert_clean_boot(machine, machine.boot())
    shim = machine.cloud_dir / "handlers" / "cernvm_handlers.py"
    assert shim.exists()
    assert machine.cloud_init("clean").returncode == 0
    assert not shim.exists()
    assert_clean_boot(machine, machine.boot())
    assert shim.exists()


# --- bad input: one clear line, use what can be used, never a traceback ----

def _bad_seed(machine: sandbox.Machine, kind: str) -> None:
    seed = machine.write_seed("EC2", CLOUD_CONFIG, META)
    if kind == "unknown-provider":
        (seed / "source").write_text("Hetzner\n")
    elif kind == "bad-meta-data":
        (seed / "meta-data").write_text("{'instance-id': oops")
    elif kind == "user-data-directory":
        (seed / "user-data").unlink()
        (seed / "user-data").mkdir()
    elif kind == "user-data-missing":
        (seed / "user-data").unlink()
    elif kind == "world-writable":
        (seed / "user-data").chmod(0o666)
    elif kind == "source-directory":
        (seed / "source").unlink()
        (seed / "source").mkdir()
    else:
        raise AssertionError(kind)


@pytest.mark.parametrize(
    ("kind", "used", "message"),
    [
        ("unknown-provider", True, "unknown provider 'Hetzner'"),
        ("bad-meta-data", True, "meta-data: not valid JSON"),
        ("world-writable", False, "writable by others"),
        ("user-data-directory", False, "seed not used: cannot read"),
        # the marker of a failed stage; this machine shows no provider
        ("user-data-missing", False, "shows no provider either: booting without user-data"),
        ("source-directory", False, "seed not used: cannot read"),
    ],
)
def test_bad_seed(machine, kind, used, message):
    _bad_seed(machine, kind)
    result = machine.boot(sandbox.BOOT_STAGES[:2])
    assert_clean_boot(machine, result)
    warnings = cernvm_warnings(machine)
    assert any(message in w for w in warnings), warnings
    # one line per problem: no multi-line dumps
    assert all("\n" not in w for w in warnings)
    assert (result.v1["platform"] == "cernvm") is used
    if kind == "unknown-provider":
        assert result.v1["cloud_name"] == "unknown"
    if kind == "bad-meta-data":
        assert result.v1["instance_id"].startswith("cernvm-")


def test_seed_of_an_existing_image_boots_without_a_warning(machine):
    # µCernVM writes 0755/0644, an empty ucontext and its extra files
    machine.write_seed("EC2", CLOUD_CONFIG, META, ucontext="")
    seed = machine.seed_dir
    (seed / "pickup.tar.gz").write_bytes(b"\x1f\x8b\x08\x00")
    (seed / "extra-ucontext").write_text("")
    seed.chmod(0o755)
    for p in seed.iterdir():
        p.chmod(0o644)
    result = machine.boot()
    assert_clean_boot(machine, result)
    assert cernvm_warnings(machine) == []
    assert result.v1["platform"] == "cernvm" and runcmd_count(machine) == 1
    assert "was readable by others; made private" in machine.log
    assert stat.S_IMODE(seed.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in seed.iterdir()} == {0o600}
    if sandbox.version_key(machine.release) >= (23, 4):  # "degraded" exists there
        status = machine.cloud_init("status", "--long")
        assert status.returncode == 0, status.stdout


def test_instance_data_keeps_ucontext_private(machine):
    machine.write_seed("EC2", CLOUD_CONFIG, META,
                       ucontext="_UCONTEXT_CERNVM_INJECT=c2VjcmV0\n")
    assert_clean_boot(machine, machine.boot(sandbox.BOOT_STAGES[:2]))
    public = (machine.run_dir / "cloud-init" / "instance-data.json").read_text()
    private = machine.run_dir / "cloud-init" / "instance-data-sensitive.json"
    assert "c2VjcmV0" not in public
    assert "c2VjcmV0" in private.read_text()
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert json.loads(public)["v1"]["platform"] == "cernvm"


def test_old_syntax_seed_reaches_every_consumer(machine_factory):
    """A µCernVM-era context: every section lands with its own consumer."""
    fake = sandbox.REPO / "tests" / "fakes" / "amiconfig"
    machine = machine_factory(extra_config={"datasource": {"CernVM": {
        "amiconfig_command": f"{fake} -c {fake}-default.cfg",
        "amiconfig_done_file": "/var/log/amiconfig-user.done"}}})
    (machine.dir / "var-log" / "fake-amiconfig").mkdir()
    old_syntax = (
        "#!/bin/sh.after\necho script >> /var/log/script-ran\nexit\n"
        "[ucernvm-begin]\ncvmfs_branch=cernvm-prod.cern.ch\nresize_rootfs=off\n[ucernvm-end]\n"
        "[amiconfig]\nplugins = condor\n[cernvm]\norganisations = cms\n"
        "#cloud-config\n" + CLOUD_CONFIG.split("\n", 1)[1]
    )
    machine.write_seed("OpenNebula", old_syntax,
                       ucontext="_UCONTEXT_CVMFS_BRANCH=cernvm-prod.cern.ch\n"
                                "_UCONTEXT_RESIZE_ROOTFS=0\n")
    assert_clean_boot(machine, machine.boot())
    assert "Unhandled" not in machine.log
    # the script (its marker turned into a real interpreter) ran after amiconfig
    assert (machine.dir / "var-log" / "script-ran").read_text() == "script\n"
    # amiconfig got the ini sections and the µCernVM block (as it read it before), only them
    payload = (machine.instance_dir / "cernvm" / "amiconfig-user-data").read_text()
    assert payload == (
        "[ucernvm-begin]\ncvmfs_branch=cernvm-prod.cern.ch\nresize_rootfs=off\n[ucernvm-end]\n"
        "[amiconfig]\nplugins = condor\n[cernvm]\norganisations = cms\n")
    # the µCernVM block was recorded and agrees with what microboot saved
    record = json.loads((machine.instance_dir / "cernvm" / "ucernvm.json").read_text())
    assert record["settings"] == {"_UCONTEXT_CVMFS_BRANCH": "cernvm-prod.cern.ch",
                                  "_UCONTEXT_RESIZE_ROOTFS": "0"}
    assert record["differences"] == []
    # the cloud-config ran
    assert runcmd_count(machine) == 1
    # cernvm-context show reads the same machine, from its disk, without secrets
    shown = subprocess.run(
        [sys.executable, "-m", "cloudinit_cernvm", "show", "--json",
         "--seed-dir", str(machine.seed_dir), "--cloud-dir", str(machine.cloud_dir)],
        capture_output=True, text=True, check=False, cwd=sandbox.REPO)
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert report["provider"] == "OpenNebula"
    assert [p["type"] for p in report["user_data"]["parts"]] == [
        "text/x-shellscript", "text/ucernvm", "text/amiconfig", "text/cloud-config"]
    assert report["records"]["files"]["amiconfig.json"]["exit_status"] == 0
    assert "organisations = cms" not in shown.stdout


def test_later_stages_unpickle_without_the_seed_modules(machine, release):
    """Three of the four cloud-init processes only unpickle the datasource:
    they must not pay for importing the seed reader and the converter."""
    machine.write_seed("EC2", CLOUD_CONFIG, META)
    assert_clean_boot(machine, machine.boot())
    pkl = machine.instance_dir / "obj.pkl"
    code = (
        "import pickle, sys\n"
        f"ds = pickle.load(open({str(pkl)!r}, 'rb'))\n"
        "assert type(ds).__name__ == 'DataSourceCernVM', ds\n"
        "assert ds.get_instance_id() == sys.argv[1], ds.get_instance_id()\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('cloudinit_cernvm'))))\n"
    )
    env = {"PYTHONPATH": f"{sandbox.site_packages(release)}:{sandbox.REPO}",
           "PATH": "/usr/bin:/bin"}
    done = subprocess.run([str(sandbox.python_for(release)), "-c", code, META["instance-id"]],
                          capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.split())
    assert "cloudinit_cernvm.DataSourceCernVM" in loaded
    assert not loaded & {"cloudinit_cernvm.seed", "cloudinit_cernvm.userdata"}, loaded


def test_datasource_default_seed_dir_is_the_seed_modules():
    from cloudinit_cernvm import seed

    code = ("import sys; sys.path.insert(0, sys.argv[1]); "
            "import cloudinit_cernvm.DataSourceCernVM as d; print(d.DEFAULT_SEED_DIR)")
    rel = sandbox.releases()[-1]
    done = subprocess.run([str(sandbox.python_for(rel)), "-c", code,
                           str(sandbox.site_packages(rel))],
                          capture_output=True, text=True, cwd=sandbox.REPO, check=False)
    assert done.stdout.strip() == seed.DEFAULT_SEED_DIR, done.stderr
