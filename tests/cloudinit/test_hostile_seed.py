"""Hostile seeds under real cloud-init (issue 22): the boot goes on, one warning each."""

from __future__ import annotations

import os
import time

import pytest

from tests.cloudinit.helpers import assert_clean_boot, cernvm_warnings
from tests.harness import sandbox

CLOUD_CONFIG = (
    "#cloud-config\n"
    "runcmd:\n"
    " - [sh, -c, 'echo ran >> /var/log/runcmd-count']\n"
)


def ran(machine: sandbox.Machine, name: str) -> str:
    path = machine.dir / "var-log" / name
    return path.read_text() if path.exists() else ""


def deep_mime(depth: int) -> str:
    head = "".join(f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n'
                   for i in range(depth))
    tail = "".join(f"--b{i}--\n" for i in reversed(range(depth)))
    return ("MIME-Version: 1.0\n" + head + "Content-Type: text/cloud-config\n\n"
            + CLOUD_CONFIG + tail)


def test_deeply_nested_meta_data_costs_one_warning_not_the_seed(machine):
    depth = 200_000
    meta = '{"instance-id": "i-deep", "x": ' + "[" * depth + "]" * depth + "}"
    machine.write_seed("EC2", CLOUD_CONFIG, meta)
    result = machine.boot()
    assert_clean_boot(machine, result)
    assert result.v1["platform"] == "cernvm"
    assert result.v1["instance_id"].startswith("cernvm-")  # meta-data ignored
    assert ran(machine, "runcmd-count") == "ran\n"  # the user-data was used
    warnings = cernvm_warnings(machine)
    assert len(warnings) == 1 and "nested more than 32 levels deep" in warnings[0], warnings


@pytest.mark.parametrize("depth", [24, 100])
def test_deeply_nested_mime_is_handed_on_as_given_with_one_warning(machine, depth):
    machine.write_seed("OpenStack", deep_mime(depth), {"instance-id": "i-mime"})
    result = machine.boot()
    assert_clean_boot(machine, result)
    assert result.v1["instance_id"] == "i-mime"
    warnings = cernvm_warnings(machine)
    assert len(warnings) == 1, warnings
    assert f"nested {depth} levels deep (at most 20); not converted" in warnings[0]
    # cloud-init reads the raw MIME itself: its cloud-config still runs
    assert ran(machine, "runcmd-count") == "ran\n"


def test_mime_too_deep_for_any_parser_is_not_handed_on_and_the_boot_goes_on(machine):
    """980 levels inside 64 KiB: cloud-init's own parser fails on it (RecursionError)."""
    seed = machine.write_seed("OpenStack", deep_mime(980), {"instance-id": "i-mime"})
    before = (seed / "user-data").read_bytes()
    result = machine.boot()
    assert_clean_boot(machine, result)
    assert result.v1["instance_id"] == "i-mime"
    warnings = cernvm_warnings(machine)
    assert len(warnings) == 1, warnings
    assert "not handed to cloud-init" in warnings[0] and "the seed keeps it" in warnings[0]
    assert (seed / "user-data").read_bytes() == before


@pytest.mark.parametrize("name", ["meta-data", "ucontext"])
def test_a_fifo_in_the_seed_never_blocks_the_boot(machine, name):
    seed = machine.write_seed("EC2", CLOUD_CONFIG, {"instance-id": "i-fifo"},
                              ucontext="_UCONTEXT_CVMFS_BRANCH=prod\n")
    (seed / name).unlink()
    os.mkfifo(seed / name, 0o600)
    result = machine.boot()
    assert_clean_boot(machine, result)
    assert result.v1["platform"] == "cernvm"
    assert ran(machine, "runcmd-count") == "ran\n"
    warnings = cernvm_warnings(machine)
    assert len(warnings) == 1 and "a FIFO, not a regular file" in warnings[0], warnings


def test_no_secret_reaches_cloud_init_log(machine):
    user_data = ("[ucernvm-begin]\n"
                 "cvmfs_http_proxy=http://user:pw1@squid:3128\n"
                 "cvm_cluster_pin_2=4321\n"
                 "apikey=k-abc\n"
                 "[ucernvm-end]\n" + CLOUD_CONFIG)
    seed = machine.write_seed("EC2", user_data, {"instance-id": "i-secret"},
                              ucontext="_UCONTEXT_CVMFS_HTTP_PROXY=http://user:pw2@squid:3128\n"
                                       "_UCONTEXT_CVM_CLUSTER_PIN_2=1234\n")
    (seed / "source").write_text("password=hunter2\n")  # an unknown provider, quoted
    result = machine.boot()
    assert_clean_boot(machine, result)
    warnings = cernvm_warnings(machine)
    assert any("unknown provider 'password=(hidden)'" in w for w in warnings), warnings
    assert any("'http://(hidden)@squid:3128' in the user-data" in w for w in warnings), warnings
    for secret in ("hunter2", "pw1", "pw2", "4321", "1234", "k-abc"):
        assert secret not in machine.log, secret
    assert ran(machine, "runcmd-count") == "ran\n"


FAKE_AMICONFIG = sandbox.REPO / "tests" / "fakes" / "amiconfig"


def test_a_template_bomb_is_one_warning_and_records_follow_no_link(machine_factory):
    machine = machine_factory(extra_config={"datasource": {"CernVM": {
        "amiconfig_command": f"{FAKE_AMICONFIG} -c {FAKE_AMICONFIG}-default.cfg",
        "amiconfig_done_file": "/var/log/amiconfig-user.done"}}})
    (machine.dir / "var-log" / "fake-amiconfig").mkdir()
    bomb = '## template: jinja\n[squid]\nx = {{ "x" * 10**9 }}\n'
    user_data = ('Content-Type: multipart/mixed; boundary="B"\nMIME-Version: 1.0\n\n'
                 "--B\nContent-Type: text/amiconfig\n\n" + bomb +
                 "--B\nContent-Type: text/amiconfig\n\n"
                 "## template: jinja\n[condor]\nhost = {{ v1.local_hostname }}\n"
                 "--B--\n")
    machine.write_seed("EC2", user_data, {"instance-id": "i-bomb", "local-hostname": "w7"})
    # a link left where the handler writes amiconfig's output, pointing outside
    outside = machine.dir / "var-log" / "precious"
    outside.write_text("precious\n")
    records = machine.cloud_dir / "instances" / "i-bomb" / "cernvm"
    records.mkdir(parents=True, mode=0o700)
    (records / "amiconfig.log").symlink_to("/var/log/precious")
    started = time.monotonic()
    result = machine.boot()
    took = time.monotonic() - started
    assert_clean_boot(machine, result)
    warnings = cernvm_warnings(machine)
    assert len(warnings) == 1 and "template not rendered" in warnings[0], warnings
    payload = (records / "amiconfig-user-data").read_text()
    assert payload == bomb + "[condor]\nhost = w7\n"
    assert outside.read_text() == "precious\n"
    assert not (records / "amiconfig.log").is_symlink()
    assert took < 60, took
