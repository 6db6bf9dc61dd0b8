"""fetch-context against hostile context disks: a symlink (or a FIFO) on a
disk where the stage expects a file. A link pointing out of the disk would
put a file of the machine (here a fake secret in the test's directory) into
the seed, which the boot then hands to cloud-init and to the users' keys.
Every such file is refused with one log line; the secret reaches no seed file."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from tests.fakes import azure

from .conftest import Machine, Run, no_seed, run_fetch

SECRET = b"ssh-rsa SECRETKEYOFTHEHOST root@host\n"
UD = b"#!/bin/sh\necho hello\n"
AZURE_DMI = azure.DMI


def ovf_env(custom: bytes) -> bytes:
    return (b'<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1">'
            b"<HostName>az</HostName><CustomData>" + base64.b64encode(custom)
            + b"</CustomData></Environment>\n")


def run_with_links(bbpath: Path, tmp_path: Path, machine: Machine,
                   links: dict[str, str]) -> Run:
    """Run fetch-context on MACHINE whose disks also hold LINKS
    ("LABEL/path" -> target; "SECRET" and "SECRETDIR" name the outside)."""
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    secret = outside / "secret"
    secret.write_bytes(SECRET)
    (outside / "dir" / "root.pub").write_bytes(SECRET)
    (outside / "dir" / "user_data").write_bytes(SECRET)
    (outside / "dir" / "user-data.txt").write_bytes(SECRET)
    (outside / "context.sh").write_bytes(
        b"EC2_USER_DATA='" + base64.b64encode(SECRET) + b"'\n")
    (outside / "ovf-env.xml").write_bytes(ovf_env(SECRET))
    _root, media = machine.build(tmp_path)
    for rel, target in links.items():
        path = media / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if target == "FIFO":
            os.mkfifo(path)
        else:
            path.symlink_to({"SECRET": str(secret), "SECRETDIR": str(outside / "dir")}.get(
                target, target))
    return run_fetch(bbpath, tmp_path, machine, timeout=30)


def assert_no_secret(run: Run) -> None:
    if run.seed.exists():
        for path in run.seed.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert b"SECRETKEY" not in data and b"U0VDUkVU" not in data, path


CASES = {
    # name: (machine, links, exit status)
    "root_pubkey_link": (
        Machine(media={"CONTEXT": {"context.sh": b"ROOT_PUBKEY=root.pub\nVMID=1\n"}}),
        {"CONTEXT/root.pub": "SECRET"}, 0),
    "root_pubkey_through_a_linked_dir": (
        Machine(media={"CONTEXT": {"context.sh": b"ROOT_PUBKEY=keys/root.pub\nVMID=1\n"}}),
        {"CONTEXT/keys": "SECRETDIR"}, 0),
    "root_pubkey_link_to_a_link_inside": (
        Machine(media={"CONTEXT": {"context.sh": b"ROOT_PUBKEY=root.pub\nVMID=1\n",
                                   "other.pub": b""}}),
        {"CONTEXT/root.pub": "../outside/secret"}, 0),
    "context_sh_link": (Machine(media={"CONTEXT": {"readme": b"x"}}),
                        {"CONTEXT/context.sh": "../../outside/context.sh"}, 2),
    "vsphere_user_data_link": (Machine(dmi={"sys_vendor": "VMware, Inc."},
                                       media={"OVF": {"readme": b"x"}}),
                               {"OVF/user-data.txt": "SECRET"}, 2),
    "vsphere_user_data_fifo": (Machine(dmi={"sys_vendor": "VMware, Inc."},
                                       media={"OVF": {"readme": b"x"}}),
                               {"OVF/user-data.txt": "FIFO"}, 2),
    "config_drive_user_data_link": (
        Machine(media={"config-2": {"openstack/latest/meta_data.json": b'{"uuid": "u"}'}}),
        {"config-2/openstack/latest/user_data": "SECRET"}, 2),
    "config_drive_latest_is_a_link": (
        Machine(media={"config-2": {"openstack/2015-10-15/": b""}}),
        {"config-2/openstack/latest": "SECRETDIR"}, 2),
    "config_drive_meta_data_link": (
        Machine(media={"config-2": {"openstack/latest/user_data": UD}}),
        {"config-2/openstack/latest/meta_data.json": "SECRET"}, 0),
    "cloudstack_user_data_link": (
        Machine(media={"config-2": {"cloudstack/metadata/instance-id.txt": b"cs-1\n"}}),
        {"config-2/cloudstack/userdata/user_data.txt": "SECRET"}, 2),
    "cloudstack_keys_link": (
        Machine(media={"config-2": {"cloudstack/userdata/user_data.txt": UD}}),
        {"config-2/cloudstack/metadata/public-keys.txt": "SECRET",
         "config-2/cloudstack/metadata/local-hostname.txt": "SECRET"}, 0),
    "azure_ovf_env_link": (Machine(dmi=AZURE_DMI, media={"rd_rdfe_stable.1": {"x": b""}}),
                           {"rd_rdfe_stable.1/ovf-env.xml": "../../outside/ovf-env.xml"}, 2),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_disk_links_out_of_the_disk_are_not_followed(name: str, bbpath: Path,
                                                     tmp_path: Path) -> None:
    machine, links, rc = CASES[name]
    run = run_with_links(bbpath, tmp_path, machine, links)
    assert run.rc == rc, run.stderr
    assert_no_secret(run)
    assert run.seconds < 10
    refusals = [line for line in run.stderr.splitlines()
                if "symlink; not read" in line or "no regular file; not read" in line]
    assert len(refusals) == len(links), run.stderr
    if rc == 2:
        assert no_seed(run.seed)


def test_root_pubkey_on_the_disk_still_read(bbpath: Path, tmp_path: Path) -> None:
    """A plain key file in a sub-directory of the disk is read as before."""
    key = b"ssh-ed25519 AAAAC3Nza plain@example\n"
    m = Machine(media={"CONTEXT": {"context.sh": b"ROOT_PUBKEY=keys/root.pub\n",
                                   "keys/root.pub": key}})
    run = run_with_links(bbpath, tmp_path, m, {})
    assert run.rc == 0, run.stderr
    assert b"plain@example" in (run.seed / "meta-data").read_bytes()
