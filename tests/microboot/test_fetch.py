"""fetch-context end to end: busybox sh, fake machines, loopback services;
the seed byte for byte, its modes, the requests, the bounds."""

from __future__ import annotations

import base64
import gzip
import json
import re
import shutil
from pathlib import Path

import pytest

from tests.fakes import azure, ec2, gce, openstack
from tests.fakes.metadata import Instance, MetadataService

from .conftest import Machine, is_marker, run_fetch, seed_files

SAMPLES = Path("/work/shared/samples")
UD = b"#!/bin/sh\necho hi\nexit\n[ucernvm-begin]\nresize_rootfs=Off\ncvmfs_branch=prod\n" \
     b"cernvm_inject=aGVsbG8=\nuseglideinWMS=TRUE\n[ucernvm-end]\n[amiconfig]\nplugins = cernvm\n"
UCONTEXT = b"_UCONTEXT_RESIZE_ROOTFS=0\n_UCONTEXT_CVMFS_BRANCH=prod\n" \
           b"_UCONTEXT_CERNVM_INJECT=aGVsbG8=\n_UCONTEXT_USEGLIDEINWMS=1\n"
KEY = "ssh-ed25519 AAAAC3Nza test@example"
EC2 = Machine(dmi=ec2.DMI)


def meta(**items: object) -> bytes:
    """The meta-data file as fetch-context writes it."""
    lines = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in items.items()]
    return ("{\n" + ",\n".join(lines) + "\n}\n").encode()


def step_lines(stderr: str) -> list[str]:
    return re.findall(r"\((\d+) ms\)", stderr)


# --- EC2 -----------------------------------------------------------------------

def test_ec2_imdsv2(fetch) -> None:
    with MetadataService("EC2", UD) as svc:
        run = fetch(EC2, svc.url)
    assert run.rc == 0, run.stderr
    assert seed_files(run.seed) == {
        "source": b"EC2\n",
        "user-data": UD,
        "ucontext": UCONTEXT,
        "meta-data": meta(**{"instance-id": "i-0123456789abcdef0",
                             "local-hostname": "vm1.example.org", "public-keys": [KEY],
                             "availability-zone": "eu-west-1a", "region": "eu-west-1"}),
        "network-data": b'{"interfaces": {"macs": {"52:54:00:12:34:56": {"device-number": "0",'
                        b' "local-ipv4s": "172.31.5.10", "subnet-ipv4-cidr-block":'
                        b' "172.31.0.0/20"}}}}\n',
    }
    assert len(svc.requests) == 10  # token, 5 in one run, 4 keys of the one interface
    assert svc.count("GET", "/latest/user-data") == 1
    assert svc.count("PUT", "/latest/api/token") == 1
    gets = [r for r in svc.requests if r.method == "GET"]
    assert gets and all(r.headers.get("x-aws-ec2-metadata-token") == ec2.TOKEN for r in gets)
    # an interface without IPv6 has no ipv6s: the one 404
    assert [r.path for r in svc.requests if r.status != 200] == [
        "/latest/meta-data/network/interfaces/macs/52:54:00:12:34:56/ipv6s"]
    assert "provider EC2: DMI sys_vendor is \"Amazon EC2\"" in run.stderr
    assert len(step_lines(run.stderr)) >= 3
    assert ec2.TOKEN not in run.stderr
    assert "Terminated" not in run.stderr  # the watchdog's timer ends quietly


def test_ec2_imdsv1_only_where_no_token(fetch) -> None:
    with MetadataService("EC2", b"v1 data", imds_v1_only=True) as svc:
        run = fetch(EC2, svc.url)
    assert run.rc == 0, run.stderr
    assert (run.seed / "user-data").read_bytes() == b"v1 data"
    assert len(svc.requests) == 10 and svc.count("GET", "/latest/user-data") == 1
    assert "IMDSv1" in run.stderr


def test_ec2_no_user_data_is_an_empty_seed(fetch) -> None:
    with MetadataService("EC2", None, instance=Instance(keys=[])) as svc:
        run = fetch(EC2, svc.url)
    assert run.rc == 0, run.stderr
    files = seed_files(run.seed)
    assert files["user-data"] == b"" and files["source"] == b"EC2\n"
    assert "ucontext" not in files
    assert json.loads(files["meta-data"])["instance-id"] == "i-0123456789abcdef0"
    assert "public-keys" not in json.loads(files["meta-data"])


def test_silent_service_is_bounded(fetch) -> None:
    with MetadataService("silent") as svc:
        run = fetch(EC2, svc.url)
    assert run.rc == 2
    assert run.seconds < 15
    assert is_marker(run.seed)
    assert "no answer" in run.stderr and "no seed" in run.stderr
    assert len(svc.requests) == 1          # not asked again


def test_no_service_retries_then_gives_up(fetch) -> None:
    run = fetch(EC2, "http://127.0.0.1:9")
    assert run.rc == 2
    assert run.stderr.count("trying again") == 2
    assert run.seconds < 15 and is_marker(run.seed)


def test_no_provider(fetch) -> None:
    run = fetch(Machine(dmi={"sys_vendor": "QEMU"}))
    assert run.rc == 1, run.stderr
    assert not run.seed.exists()
    assert "no provider recognised" in run.stderr


def test_gzip_user_data_unpacked(fetch) -> None:
    with MetadataService("EC2", gzip.compress(UD)) as svc:
        run = fetch(EC2, svc.url)
    assert run.rc == 0, run.stderr
    assert (run.seed / "user-data").read_bytes() == UD
    assert (run.seed / "ucontext").read_bytes() == UCONTEXT


def test_gzip_bomb_refused(fetch) -> None:
    bomb = gzip.compress(b"\0" * (17 * 1024 * 1024), compresslevel=9)
    with MetadataService("EC2", bomb) as svc:
        run = fetch(EC2, svc.url)
    assert run.rc == 2
    assert "more than 1048576 bytes: refused" in run.stderr
    assert is_marker(run.seed)


def test_stale_seed_files_go(fetch, tmp_path: Path) -> None:
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "ucontext").write_text("_UCONTEXT_OLD=1\n")
    with MetadataService("EC2", b"no block here\n") as svc:
        run = fetch(EC2, svc.url)
    assert run.rc == 0
    assert sorted(seed_files(seed)) == ["meta-data", "network-data", "source", "user-data"]


# --- GCE, Azure, OpenStack, CloudStack -----------------------------------------------

def test_gce_base64_encoding(fetch) -> None:
    machine = Machine(dmi=gce.DMI)
    zone = Instance(zone="europe-west1-b")
    with MetadataService("GCE", base64.b64encode(UD), instance=zone,
                         gce_encoding="base64") as svc:
        run = fetch(machine, svc.url)
    assert run.rc == 0, run.stderr
    assert seed_files(run.seed) == {
        "source": b"GCE\n", "user-data": UD, "ucontext": UCONTEXT,
        "meta-data": meta(**{"instance-id": "4520031799277581759",
                             "local-hostname": "vm1.example.org", "public-keys": [KEY],
                             "availability-zone": "europe-west1-b",
                             "region": "europe-west1"}),
    }
    assert all(r.headers.get("metadata-flavor") == "Google" for r in svc.requests)
    assert svc.count("GET", "/computeMetadata/v1/instance/attributes/user-data") == 1
    assert len(svc.requests) == 2  # the user-data, and the instance directory in one


def test_gce_without_encoding_or_keys(fetch) -> None:
    machine = Machine(dmi=gce.DMI)
    with MetadataService("GCE", UD, instance=Instance(keys=[])) as svc:
        run = fetch(machine, svc.url)
    assert run.rc == 0, run.stderr
    files = seed_files(run.seed)
    assert files["user-data"] == UD
    assert json.loads(files["meta-data"])["instance-id"] == "4520031799277581759"
    assert "public-keys" not in json.loads(files["meta-data"])


def test_azure_imds(fetch) -> None:
    az = Machine(dmi=azure.DMI)
    with MetadataService("Azure", UD) as svc:
        run = fetch(az, svc.url)
    assert run.rc == 0, run.stderr
    files = seed_files(run.seed)
    assert files["user-data"] == UD and files["source"] == b"Azure\n"
    assert json.loads(files["meta-data"]) == {
        "instance-id": "5c5b8e1a-3e0d-4d6b-9b9a-0123456789ab", "local-hostname": "vm1",
        "availability-zone": "1", "region": "eu-west-1"}
    assert all(r.headers.get("metadata") == "true" for r in svc.requests)


def test_azure_ovf_env_custom_data(fetch) -> None:
    ovf = f"""<?xml version="1.0" encoding="utf-8"?>
<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1"
  xmlns:wa="http://schemas.microsoft.com/windowsazure">
 <wa:ProvisioningSection><wa:Version>1.0</wa:Version>
  <LinuxProvisioningConfigurationSet xmlns="http://schemas.microsoft.com/windowsazure">
   <ConfigurationSetType>LinuxProvisioningConfiguration</ConfigurationSetType>
   <HostName>azvm1</HostName><UserName>cernvm</UserName>
   <SSH><PublicKeys><PublicKey><Fingerprint>AB12</Fingerprint>
    <Path>/home/cernvm/.ssh/authorized_keys</Path><Value>{KEY}</Value>
   </PublicKey></PublicKeys></SSH>
   <CustomData>{base64.b64encode(UD).decode()}</CustomData>
  </LinuxProvisioningConfigurationSet>
 </wa:ProvisioningSection>
</Environment>
""".encode()
    az = Machine(dmi=azure.DMI,
                 media={"rd_rdfe_stable.161212-1209": {"ovf-env.xml": ovf}})
    run = fetch(az, "http://127.0.0.1:9")          # no request needed
    assert run.rc == 0, run.stderr
    assert seed_files(run.seed) == {
        "source": b"Azure\n", "user-data": UD, "ucontext": UCONTEXT,
        "meta-data": meta(**{"local-hostname": "azvm1", "public-keys": [KEY]})}


def test_openstack_service(fetch) -> None:
    with MetadataService("OpenStack", UD) as svc:
        run = fetch(Machine(dmi=openstack.DMI), svc.url)
    assert run.rc == 0, run.stderr
    assert seed_files(run.seed) == {
        "source": b"OpenStack\n", "user-data": UD, "ucontext": UCONTEXT,
        "meta-data": meta(**{"instance-id": "d8e02d56-2648-49a3-bf97-6be8f1204f38",
                             "local-hostname": "vm1.example.org", "public-keys": [KEY],
                             "availability-zone": "nova"}),
        "network-data": json.dumps(openstack.ONE_PORT).encode(),
        # nova's answer where the cloud configures no vendor-data
        "vendor-data": b"{}", "vendor-data2": b"{}"}
    assert len(svc.requests) == 5


def test_config_drive(fetch) -> None:
    md = {"uuid": "u-1", "hostname": "cd.example", "availability_zone": "z",
          "public_keys": {"a": "ssh-rsa AAA a\n", "b": "ssh-rsa BBB \"b\"\n"}}
    m = Machine(dmi=openstack.DMI, media={"config-2": {
        "openstack/latest/user_data": UD,
        "openstack/latest/meta_data.json": json.dumps(md, indent=1).encode()}})
    run = fetch(m)
    assert run.rc == 0, run.stderr
    assert seed_files(run.seed) == {
        "source": b"ConfigDrive\n", "user-data": UD, "ucontext": UCONTEXT,
        "meta-data": meta(**{"instance-id": "u-1", "local-hostname": "cd.example",
                             "public-keys": ["ssh-rsa AAA a", 'ssh-rsa BBB "b"'],
                             "availability-zone": "z"})}


def test_read_only_medium_still_gives_a_private_seed(bbpath: Path, tmp_path: Path) -> None:
    """Files on an ISO are 0444: the seed's copies are 0600 all the same."""
    m = Machine(media={"config-2": {"openstack/latest/user_data": UD,
                                    "openstack/latest/meta_data.json": b'{"uuid": "u-1"}'}})
    _root, media = m.build(tmp_path)
    for path in media.rglob("*"):
        path.chmod(0o555 if path.is_dir() else 0o444)
    run = run_fetch(bbpath, tmp_path, m)
    assert run.rc == 0, run.stderr
    assert seed_files(run.seed)["user-data"] == UD  # seed_files asserts 0700 and 0600


def test_cloudstack_config_drive(fetch) -> None:
    m = Machine(media={"config-2": {
        "cloudstack/userdata/user_data.txt": UD,
        "cloudstack/metadata/instance-id.txt": b"cs-1\n",
        "cloudstack/metadata/local-hostname.txt": b"csvm\n",
        "cloudstack/metadata/public-keys.txt": (KEY + "\n").encode(),
        "cloudstack/metadata/availability-zone.txt": b"zone1\n",
        "openstack/latest/user_data": b"not this one"}})
    run = fetch(m)
    assert run.rc == 0, run.stderr
    assert seed_files(run.seed) == {
        "source": b"CloudStack\n", "user-data": UD, "ucontext": UCONTEXT,
        "meta-data": meta(**{"instance-id": "cs-1", "local-hostname": "csvm",
                             "public-keys": [KEY], "availability-zone": "zone1"})}


def test_cloudstack_router(fetch) -> None:
    with MetadataService("CloudStack", UD) as svc:
        m = Machine(dmi={"product_name": "CloudStack KVM Hypervisor"},
                    dhcp_server=svc.url.removeprefix("http://"))
        run = fetch(m, "http://127.0.0.1:9")   # the router, not the metadata URL
    assert run.rc == 0, run.stderr
    assert seed_files(run.seed) == {
        "source": b"CloudStack\n", "user-data": UD, "ucontext": UCONTEXT,
        "meta-data": meta(**{"instance-id": "2f5e6b3c-4a5b-4c6d-8e9f-0a1b2c3d4e5f",
                             "public-keys": [KEY]})}
    assert svc.count("GET", "/latest/user-data") == 1
    assert len(svc.requests) <= 3


# --- OpenNebula / HEPiX, vSphere ------------------------------------------------------

def test_hepix_context_cd(fetch) -> None:
    ctx = (SAMPLES / "hepix-context.sh").read_bytes()
    m = Machine(media={"cdrom": {"context.sh": ctx, "root.pub": (KEY + "\n").encode(),
                                 "prolog.sh": b"#!/bin/sh\n", "epilog.sh": b"#!/bin/sh\n"}})
    run = fetch(m)
    assert run.rc == 0, run.stderr
    # the site context apart (tests/microboot/test_hepix_site.py)
    assert sorted(p.name for p in (run.seed / "hepix").iterdir()) == [
        "context.sh", "epilog.sh", "prolog.sh", "root.pub"]
    shutil.rmtree(run.seed / "hepix")
    assert seed_files(run.seed) == {
        "source": b"OpenNebula\n",
        "user-data": b"[cernvm]\norganisations = atlas\nrepositories = atlas,grid\n"
                     b"users = panda:atlas:\n",
        "meta-data": meta(**{"public-keys": [KEY]})}


def test_opennebula_user_data_base64_and_quoting(fetch) -> None:
    ctx = (
        "# Context variables generated by OpenNebula\n"
        f"USER_DATA='{base64.b64encode(UD).decode()}'\n"
        "USERDATA_ENCODING=\"base64\"\n"
        f"SSH_PUBLIC_KEY='{KEY}\nssh-rsa BBB two'\n"
        'SET_HOSTNAME="one\\"vm\\\\x"\n'
        "VMID='4711'\n"
    ).encode()
    run = fetch(Machine(media={"CONTEXT": {"context.sh": ctx}}))
    assert run.rc == 0, run.stderr
    files = seed_files(run.seed)
    assert files["user-data"] == UD and files["ucontext"] == UCONTEXT
    assert files["meta-data"] == meta(**{"instance-id": "4711", "local-hostname": 'one"vm\\x',
                                         "public-keys": [KEY, "ssh-rsa BBB two"]})


def test_hostile_context_sh_runs_nothing(fetch, tmp_path: Path) -> None:
    mark = tmp_path / "pwned"
    ctx = (
        f"USER_DATA=\"$(touch {mark}1) `touch {mark}2`\"; touch {mark}3\n"
        f"SET_HOSTNAME=$(touch {mark}4)\n"
        f"ROOT_PUBKEY='../../../etc/shadow'\n"
        f"eval touch {mark}5\n"
    ).encode()
    run = fetch(Machine(media={"CONTEXT": {"context.sh": ctx}}))
    assert run.rc == 0, run.stderr
    assert not list(tmp_path.glob("pwned*"))
    files = seed_files(run.seed)
    assert files["user-data"] == f"$(touch {mark}1) `touch {mark}2`".encode()
    assert json.loads(files["meta-data"]) == {"local-hostname": f"$(touch {mark}4)"}
    assert "ROOT_PUBKEY leaves the disk" in run.stderr


def test_bad_base64_is_exit_2(fetch) -> None:
    run = fetch(Machine(media={"CONTEXT": {"context.sh": b"EC2_USER_DATA='!!not base64!!'\n"}}))
    assert run.rc == 2
    assert "EC2_USER_DATA is not valid base64" in run.stderr
    assert is_marker(run.seed)


def test_vsphere_cd(fetch) -> None:
    m = Machine(dmi={"sys_vendor": "VMware, Inc."}, media={"OVF": {"user-data.txt": UD}})
    run = fetch(m)
    assert run.rc == 0, run.stderr
    assert seed_files(run.seed) == {"source": b"vSphere\n", "user-data": UD,
                                    "ucontext": UCONTEXT}


def test_user_data_cd_on_any_hypervisor(fetch) -> None:
    # µCernVM took a CD holding user-data.txt whatever the machine
    m = Machine(dmi={"sys_vendor": "QEMU", "product_name": "Standard PC (i440FX + PIIX, 1996)"},
                media={"cdrom": {"user-data.txt": UD}})
    run = fetch(m)
    assert run.rc == 0, run.stderr
    assert (run.seed / "source").read_bytes() == b"vSphere\n"
    assert (run.seed / "user-data").read_bytes() == UD


def test_cmdline_names_provider_without_its_data(fetch) -> None:
    run = fetch(Machine(cmdline="cernvm.source=ConfigDrive"))
    assert run.rc == 2
    assert "no disk labelled config-2" in run.stderr
    assert is_marker(run.seed)


# --- the µCernVM block ------------------------------------------------------------

def ucontext_of(fetch, user_data: bytes) -> bytes | None:
    run = fetch(Machine(media={"OVF": {"user-data.txt": user_data}},
                        dmi={"sys_vendor": "VMware, Inc."}))
    assert run.rc == 0, run.stderr
    path = run.seed / "ucontext"
    return path.read_bytes() if path.exists() else None


def test_ucontext_first_block_only_exact_markers(fetch) -> None:
    # (an exact end marker before the block would end all reading)
    ud = (b" [ucernvm-begin]\nignored=1\n[ucernvm-end] \n"
          b"[ucernvm-begin]\r\nCvmfs_Tag=v1=2\r\nuse_boothd=No\r\nnoequals\r\nx=yes please\r\n"
          b"[ucernvm-end]\r\n[ucernvm-begin]\nsecond=1\n[ucernvm-end]\n")
    assert ucontext_of(fetch, ud) == (b"_UCONTEXT_CVMFS_TAG=v1=2\n_UCONTEXT_USE_BOOTHD=0\n"
                                      b"_UCONTEXT_X='yes please'\n")


def test_ucontext_none_without_block(fetch) -> None:
    assert ucontext_of(fetch, b"#cloud-config\nruncmd: [ls]\n") is None


def test_ucontext_in_base64_mime_part(fetch) -> None:
    block = b"[ucernvm-begin]\ncvmfs_server=s1.example.org\nresize_rootfs=ON\n[ucernvm-end]\n"
    ud = (b'Content-Type: multipart/mixed; boundary="==BOUND=="\nMIME-Version: 1.0\n\n'
          b"--==BOUND==\nContent-Type: text/cloud-config\n\n#cloud-config\n{}\n"
          b"--==BOUND==\nContent-Type: text/ucernvm\nContent-Transfer-Encoding: base64\n\n"
          + base64.encodebytes(block) + b"--==BOUND==--\n")
    assert ucontext_of(fetch, ud) == (b"_UCONTEXT_CVMFS_SERVER=s1.example.org\n"
                                      b"_UCONTEXT_RESIZE_ROOTFS=1\n")


def test_ucontext_in_plain_mime_part(fetch) -> None:
    ud = (SAMPLES / "mime-as-printed.txt").read_bytes()
    # its boundaries do not match its header: the text itself is searched
    assert ucontext_of(fetch, ud) == b"_UCONTEXT_KEY1=value1\n_UCONTEXT_KEY2=value2\n"


def _mime(*parts: tuple[str, bytes, bool]) -> bytes:
    """Multipart user-data of (type, body, base64?) parts."""
    out = b'Content-Type: multipart/mixed; boundary="==B=="\nMIME-Version: 1.0\n\n'
    for ctype, body, b64 in parts:
        out += f"--==B==\nContent-Type: {ctype}\n".encode()
        if b64:
            out += b"Content-Transfer-Encoding: base64\n\n" + base64.encodebytes(body)
        else:
            out += b"\n" + body
    return out + b"--==B==--\n"


def test_ucontext_in_a_later_plain_mime_part(fetch) -> None:
    ud = _mime(("text/cloud-config", b"#cloud-config\n{}\n", False),
               ("text/x-shellscript", b"#!/bin/sh\necho [ucernvm-begin]\n", False),
               ("text/ucernvm", b"[ucernvm-begin]\r\ncvmfs_tag=v2\r\n[ucernvm-end]\r\n", False))
    assert ucontext_of(fetch, ud) == b"_UCONTEXT_CVMFS_TAG=v2\n"


@pytest.mark.parametrize("base64_first", [True, False])
def test_ucontext_first_block_in_part_order(fetch, base64_first: bool) -> None:
    encoded = ("text/ucernvm", b"[ucernvm-begin]\nwho=encoded\n[ucernvm-end]\n", True)
    plain = ("text/ucernvm", b"[ucernvm-begin]\nwho=plain\n[ucernvm-end]\n", False)
    ud = _mime(*((encoded, plain) if base64_first else (plain, encoded)))
    want = b"encoded" if base64_first else b"plain"
    assert ucontext_of(fetch, ud) == b"_UCONTEXT_WHO=" + want + b"\n"
