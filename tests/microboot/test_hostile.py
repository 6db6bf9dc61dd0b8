"""fetch-context against hostile answers: a metadata service, a context
disk or the user-data controlled by an attacker writes nothing outside the
stage's work and seed directories."""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import subprocess
from pathlib import Path

import pytest

from tests.fakes import azure, ec2, gce, openstack
from tests.fakes.metadata import Broken, Instance, MetadataService

from .conftest import FETCH, Machine, no_seed

GCE = Machine(dmi=gce.DMI)
INSTANCE = "/computeMetadata/v1/instance/?recursive=true"


def files_under(top: Path) -> set[str]:
    """Every file below TOP, relative, but the run's own work directories."""
    return {str(p.relative_to(top)) for p in top.rglob("*")
            if p.is_file() and not str(p.relative_to(top)).startswith(("tmp/", "seed/"))}


def test_gce_keys_naming_paths_write_nothing_outside(fetch, tmp_path: Path) -> None:
    escape = "../" * 12 + str(tmp_path).lstrip("/") + "/escaped"
    doc = {
        escape: "top-level",
        "attributes": {"user-data-encoding": "", "ssh-keys": "cernvm:ssh-ed25519 AAAA k"},
        escape + "-parent": {"x": "second level", "id": "1"},
        "..": {"y": "dot-dot parent"},
        "bad\nname": "a line end", "id": 42, "hostname": "vm1", "zone": "z/europe-west1-b",
    }
    with MetadataService("GCE", b"hello", instance=Instance(keys=[]),
                         answers={INSTANCE: (200, json.dumps(doc).encode())}) as svc:
        run = fetch(GCE, svc.url)
    assert run.rc == 0, run.stderr
    assert {f for f in files_under(tmp_path) if not f.startswith(("root/", "media/"))} == set()
    assert not list(tmp_path.rglob("escaped*"))
    assert (run.seed / "user-data").read_bytes() == b"hello"
    meta = json.loads((run.seed / "meta-data").read_text())
    assert meta["instance-id"] == "42" and meta["local-hostname"] == "vm1"


# --- the JSON reader: values from their own path, any size ---------------------------

EC2 = Machine(dmi=ec2.DMI)
OPENSTACK = Machine(dmi=openstack.DMI)
AZURE = Machine(dmi=azure.DMI)
KEY = "ssh-ed25519 AAAAC3Nza test@example"
#: a shell script: quotes, backslashes, line ends and what Go's JSON escapes (<>&)
SCRIPT = b'#!/bin/sh\necho "a \\"b\\" c" >/dev/null 2>&1 && x=$((1<2)) || printf \'%s\\n\' \\\n'


def meta_of(run) -> dict:
    return json.loads((run.seed / "meta-data").read_text())


def test_gce_user_data_at_its_limit_in_the_instance_json_too(fetch) -> None:
    ud = (SCRIPT * (256 * 1024 // len(SCRIPT) + 1))[:256 * 1024]
    keys = [KEY, "ssh-rsa AAAAB3 me \U0001F600 \"quoted\" back\\slash"]
    with MetadataService("GCE", ud, instance=Instance(keys=keys)) as svc:
        run = fetch(GCE, svc.url)
    assert run.rc == 0, run.stderr
    assert run.seconds < 5, run.stderr
    assert (run.seed / "user-data").read_bytes() == ud
    meta = meta_of(run)
    assert meta["instance-id"] == "4520031799277581759"
    assert meta["public-keys"] == keys
    assert meta["availability-zone"] == "eu-west-1a"


def test_gce_ssh_key_of_256_kb_with_escapes_on_one_line(fetch) -> None:
    big = "ssh-rsa AAAA" + 'B\\"' * 80_000 + " me"
    doc = {"id": 7, "hostname": "vm1", "zone": "projects/1/zones/europe-west1-b",
           "attributes": {"ssh-keys": f"cernvm:{KEY}\nroot:{big}"}}
    with MetadataService("GCE", b"ud", answers={INSTANCE: (200, json.dumps(doc).encode())}) as svc:
        run = fetch(GCE, svc.url)
    assert run.rc == 0, run.stderr
    assert run.seconds < 5
    meta = meta_of(run)
    assert meta["public-keys"] == [KEY, big]
    assert meta["region"] == "europe-west1"


def test_gce_instance_json_nested_200000_deep_is_refused_quickly(fetch) -> None:
    deep = b'{"id": 1, "x": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    with MetadataService("GCE", b"hello", answers={INSTANCE: (200, deep)}) as svc:
        run = fetch(GCE, svc.url)
    assert run.rc == 2 and no_seed(run.seed)
    assert run.seconds < 5
    assert "JSON nested deeper than 32 levels" in run.stderr


def test_openstack_items_come_from_the_top_level_only(fetch) -> None:
    doc = {"meta": {"uuid": "evil", "hostname": "evil", "public_keys": {"x": "ssh-rsa EVIL"}},
           "uuid": "d8e0-good", "hostname": "vm1", "availability_zone": "nova",
           "public_keys": {"k0": KEY + "\n"}}
    with MetadataService("OpenStack", b"ud", answers={
            "/openstack/latest/meta_data.json": (200, json.dumps(doc).encode())}) as svc:
        run = fetch(OPENSTACK, svc.url)
    assert run.rc == 0, run.stderr
    assert meta_of(run) == {"instance-id": "d8e0-good", "local-hostname": "vm1",
                            "public-keys": [KEY], "availability-zone": "nova"}


def test_ec2_identity_items_come_from_the_top_level_only(fetch) -> None:
    doc = {"devpay": {"instanceId": "i-evil", "region": "evil"}, "instanceId": "i-good",
           "availabilityZone": "eu-west-1a", "region": "eu-west-1"}
    with MetadataService("EC2", b"ud", instance=Instance(keys=[]), answers={
            "/latest/dynamic/instance-identity/document":
                (200, json.dumps(doc).encode())}) as svc:
        run = fetch(EC2, svc.url)
    assert run.rc == 0, run.stderr
    meta = meta_of(run)
    assert meta["instance-id"] == "i-good" and meta["region"] == "eu-west-1"


# --- processing bounded at the clouds' limits --------------------------------------------

def test_ec2_gzip_of_16_mb_on_one_line_is_refused_quickly(fetch) -> None:
    bomb = gzip.compress(b"x" * 16_000_000, compresslevel=9)
    assert len(bomb) < 16 * 1024
    with MetadataService("EC2", bomb) as svc:
        run = fetch(EC2, svc.url)
    assert run.rc == 2 and no_seed(run.seed)
    assert run.seconds < 5
    assert "more than 1048576 bytes: refused" in run.stderr


def vsphere(user_data: bytes) -> Machine:
    return Machine(media={"OVF": {"user-data.txt": user_data}}, dmi={"sys_vendor": "VMware, Inc."})


def test_user_data_of_header_lines_without_end_is_read_quickly(fetch) -> None:
    ud = b"X-Header: value\n" * (1024 * 1024 // 16)
    run = fetch(vsphere(ud))
    assert run.rc == 0, run.stderr
    assert run.seconds < 5
    assert (run.seed / "user-data").read_bytes() == ud
    assert not (run.seed / "ucontext").exists()


def test_ucontext_block_of_a_mebibyte_keeps_256_settings(fetch) -> None:
    ud = b"[ucernvm-begin]\n" + b"cvmfs_branch=prod\n" * (1024 * 1024 // 18) + b"[ucernvm-end]\n"
    run = fetch(vsphere(ud))
    assert run.rc == 0, run.stderr
    assert run.seconds < 5
    assert (run.seed / "ucontext").read_bytes() == b"_UCONTEXT_CVMFS_BRANCH=prod\n" * 256
    assert "more than 256 settings" in run.stderr


def test_mime_of_200000_parts_reads_the_first_32(fetch) -> None:
    ud = (b'Content-Type: multipart/mixed; boundary="b"\n\n--b\n\n[ucernvm-begin]\nk=v\n'
          b"[ucernvm-end]\n" + b"--b\n\n" * 200_000)
    run = fetch(vsphere(ud))
    assert run.rc == 0, run.stderr
    assert run.seconds < 5
    assert (run.seed / "ucontext").read_bytes() == b"_UCONTEXT_K=v\n"


def test_mime_of_many_base64_parts_reads_the_first_32(fetch) -> None:
    part = b"--b\nContent-Transfer-Encoding: base64\n\nYQ==\n"
    ud = b'Content-Type: multipart/mixed; boundary="b"\n\n' + part * 1000
    run = fetch(vsphere(ud))
    assert run.rc == 0, run.stderr
    assert run.seconds < 5
    assert "more than 32 parts" in run.stderr


def test_long_cmdline_value_is_skipped_quickly(fetch) -> None:
    words = ["root=/dev/vda1", "cernvm.source=" + "x" * 2000, "ds=" + "e" * 1000, "quiet"]
    m = Machine(dmi=gce.DMI, cmdline=" ".join(words))
    run = fetch(m, args=["--detect"])
    assert run.rc == 0, run.stderr
    assert run.seconds < 5
    assert run.stdout.startswith("GCE\t")


# --- bodies saved only when whole -------------------------------------------------------

def test_body_cut_short_is_tried_again_then_not_saved(fetch) -> None:
    with MetadataService("EC2", b"ud", answers={"/latest/user-data": Broken("short")}) as svc:
        run = fetch(EC2, svc.url)
    assert run.rc == 2 and no_seed(run.seed), run.stderr
    assert svc.count("GET", "/latest/user-data") == 3
    assert "cut short" in run.stderr


def test_body_dripping_past_the_time_limit_is_not_saved(fetch) -> None:
    with MetadataService("GCE", b"ud", answers={
            "/computeMetadata/v1/instance/attributes/user-data": Broken("drip", seconds=8)}) as svc:
        run = fetch(GCE, svc.url)
    assert run.rc == 2 and no_seed(run.seed), run.stderr
    assert run.seconds < 12
    assert "not whole within the time limit" in run.stderr


@pytest.mark.parametrize("kind", ["endless", "chunked"])
def test_endless_body_ends_quickly_with_nothing_written(fetch, kind: str) -> None:
    with MetadataService("EC2", b"ud", answers={
            "/latest/user-data": Broken(kind, limit=64 * 1024 * 1024, seconds=8)}) as svc:
        run = fetch(EC2, svc.url)
    assert run.rc == 2 and no_seed(run.seed), run.stderr
    assert run.seconds < 5
    assert "answer larger than 32768 bytes: refused" in run.stderr


def test_body_over_its_cap_is_refused(fetch) -> None:
    with MetadataService("EC2", b"x" * 40_000) as svc:
        run = fetch(EC2, svc.url)
    assert run.rc == 2 and no_seed(run.seed), run.stderr
    assert svc.count("GET", "/latest/user-data") == 1
    assert "answer larger than 32768 bytes: refused" in run.stderr


def test_small_item_over_its_cap_is_left_out(fetch) -> None:
    with MetadataService("EC2", b"ud", answers={
            "/latest/meta-data/local-hostname": (200, b"h" * 9000)}) as svc:
        run = fetch(EC2, svc.url)
    assert run.rc == 0, run.stderr
    assert "local-hostname" not in meta_of(run)
    assert "hostname: answer larger than 8192 bytes: refused" in run.stderr


# --- base64 as strict as cernvm-context's check ----------------------------------------

AZURE_UD = "/metadata/instance/compute/userData?api-version=2021-01-01&format=text"


def test_azure_user_data_not_base64_is_exit_2(fetch) -> None:
    with MetadataService("Azure", b"x", answers={AZURE_UD: (200, b"QUJD!!")}) as svc:
        run = fetch(AZURE, svc.url)
    assert run.rc == 2 and no_seed(run.seed)
    assert "Azure userData is not valid base64" in run.stderr


B64_CASES = ["", "YWJj", "YWI=", "YQ==", "YWJjZA==\n", "YW Jj\r\nZA==", "YWJjZA=", "YWJjZ",
             "YQ=", "YQ===", "YWJj=", "YWJj==", "YWJj===", "YWI==", "=", "==", "YQ==YQ==",
             "YW=j", "QUJD!!", "YWJj\x00", "YW-_", "a", "YWJj\tZA==", "YWJj\x0bZA=="]


def b64_decode(tmp: Path, bbpath: Path, data: bytes) -> bytes | None:
    (tmp / "in").write_bytes(data)
    lib = FETCH.parent / "lib"
    script = (f'log() {{ echo "$*" >&2; }}; . {lib}/formats.sh; WORK={tmp}; '
              f'b64 {tmp}/in {tmp}/out data && cat {tmp}/out')
    done = subprocess.run([str(bbpath / "sh"), "-c", script], capture_output=True,
                          env={"PATH": str(bbpath)}, timeout=10, check=False)
    return done.stdout if done.returncode == 0 else None


def test_b64_takes_what_python_takes_on_every_version(bbpath: Path, tmp_path: Path) -> None:
    for case in B64_CASES:
        data = case.encode()
        try:
            want: bytes | None = base64.b64decode(b"".join(data.split()), validate=True)
        except binascii.Error:
            want = None
        if case in ("YWJj==", "YWJj===", "YWI=="):   # Python 3.9 and 3.11+ disagree
            want = base64.b64decode(data[:4]) if case == "YWJj==" else None
        assert b64_decode(tmp_path, bbpath, data) == want, case
