"""NoCloud through fetch-context under busybox: the cidata disk, the seed
URL on the kernel command line or in the SMBIOS serial (2 requests), file://
seeds, and meta-data in YAML or JSON."""

from __future__ import annotations

import base64
import json

import pytest

from tests.fakes.nocloud import SeedServer

from .conftest import Machine, no_seed, seed_files

UD = b"#cloud-config\nruncmd: [[touch, /tmp/x]]\n"
KEY = "ssh-ed25519 AAAAC3Nza nc@example"
KEY2 = "ssh-rsa AAAAB3Nza other@example"
YAML_MD = f"""\
# cloud-localds writes this
instance-id: iid-local01
local-hostname: 'cloudimg'
public-keys:
  - {KEY}
  - "{KEY2}"
network-interfaces: |
  iface eth0 inet dhcp
""".encode()


def meta_of(run) -> dict:
    return json.loads((run.seed / "meta-data").read_bytes())


def test_cidata_disk(fetch) -> None:
    run = fetch(Machine(media={"cidata": {"user-data": UD, "meta-data": YAML_MD}}))
    assert run.rc == 0, run.stderr
    files = seed_files(run.seed)
    assert files["source"] == b"NoCloud\n" and files["user-data"] == UD
    meta = json.loads(files["meta-data"])
    assert meta["instance-id"] == "iid-local01"
    assert meta["local-hostname"] == "cloudimg"
    assert meta["public-keys"] == [KEY, KEY2]
    # the whole file kept for the datasource's YAML parser
    assert base64.b64decode(meta["nocloud-meta-data-base64"]) == YAML_MD
    assert 'provider NoCloud: a disk labelled "cidata" holds meta-data' in run.stderr


def test_cidata_upper_case_vfat_label(fetch) -> None:
    run = fetch(Machine(media={"CIDATA": {"user-data": UD, "meta-data": b"instance-id: i-9\n"}}))
    assert run.rc == 0, run.stderr
    assert meta_of(run)["instance-id"] == "i-9"


@pytest.mark.parametrize("where", ["cmdline", "serial"])
def test_seed_url_two_requests(fetch, where: str) -> None:
    files = {"/seed/user-data": UD, "/seed/meta-data": YAML_MD}
    with SeedServer(files) as srv:
        word = f"ds=nocloud-net;s={srv.url}/seed/;h=vm7"
        m = Machine(cmdline=f"root=/dev/vda1 {word} quiet") if where == "cmdline" \
            else Machine(dmi={"product_serial": word, "sys_vendor": "QEMU"})
        run = fetch(m)
    assert run.rc == 0, run.stderr
    assert (run.seed / "user-data").read_bytes() == UD
    assert sorted(r.path for r in srv.requests) == ["/seed/meta-data", "/seed/user-data"]
    assert all(r.status == 200 for r in srv.requests)
    meta = meta_of(run)
    assert meta["instance-id"] == "iid-local01"
    assert meta["local-hostname"] == "vm7"  # h= wins over the file's, as in cloud-init
    assert (run.seed / "source").read_bytes() == b"NoCloud\n"


def test_seed_url_without_slash_and_with_percent_s(fetch) -> None:
    files = {"/a/user-data": b"one", "/a/meta-data": b"instance-id: a\n",
             "/b/user-data.txt": b"two", "/b/meta-data.txt": b"instance-id: b\n"}
    with SeedServer(files) as srv:
        run_a = fetch(Machine(cmdline=f"ds=nocloud;s={srv.url}/a"))
        assert run_a.rc == 0, run_a.stderr
        assert (run_a.seed / "user-data").read_bytes() == b"one"
        run_b = fetch(Machine(cmdline=f"ds=nocloud;s={srv.url}/b/%s.txt"))
    assert run_b.rc == 0, run_b.stderr
    assert (run_b.seed / "user-data").read_bytes() == b"two"
    assert meta_of(run_b)["instance-id"] == "b"
    assert len(srv.requests) == 4


def test_file_seed(fetch, tmp_path) -> None:
    seed = tmp_path / "nc"
    seed.mkdir()
    (seed / "user-data").write_bytes(UD)
    (seed / "meta-data").write_bytes(b'{"instance-id": "j-1", "public-keys": {"k": "%s"}}\n'
                                     % KEY.encode())
    run = fetch(Machine(cmdline=f"ds=nocloud;s=file://{seed}/;i=cmdline-id"))
    assert run.rc == 0, run.stderr
    meta = meta_of(run)
    assert meta["instance-id"] == "cmdline-id"  # i= wins
    assert meta["public-keys"] == [KEY]


@pytest.mark.parametrize("text, want", [
    (b'{"instance-id": "j-2", "local-hostname": "h\\u0041", "public-keys": ["%s", "%s"]}'
     % (KEY.encode(), KEY2.encode()), {"instance-id": "j-2", "public-keys": [KEY, KEY2]}),
    (b'{\n  "local-hostname": "jh",\n  "instance-id": "j-3",\n  "public-keys": "%s"\n}\n'
     % KEY.encode(), {"instance-id": "j-3", "local-hostname": "jh", "public-keys": [KEY]}),
    (b"instance-id: y-1 # comment\npublic-keys: %s\n" % KEY.encode(),
     {"instance-id": "y-1", "public-keys": [KEY]}),
    (b"instance-id: \"y-2\"\r\npublic-keys: ['%s', '%s']\r\n" % (KEY.encode(), KEY2.encode()),
     {"instance-id": "y-2", "public-keys": [KEY, KEY2]}),
    (b"public-keys:\n  mine: %s\n  other: %s\ninstance-id: y-3\n" % (KEY.encode(), KEY2.encode()),
     {"instance-id": "y-3", "public-keys": [KEY, KEY2]}),
    (b"public-keys: |\n  %s\n  %s\ninstance-id: y-4\n" % (KEY.encode(), KEY2.encode()),
     {"instance-id": "y-4", "public-keys": [KEY, KEY2]}),
])
def test_meta_data_shapes(fetch, text: bytes, want: dict) -> None:
    run = fetch(Machine(media={"cidata": {"user-data": b"", "meta-data": text}}))
    assert run.rc == 0, run.stderr
    meta = meta_of(run)
    for key, value in want.items():
        assert meta[key] == value, (key, meta)


def test_missing_seed_is_exit_2(fetch) -> None:
    with SeedServer({}) as srv:
        run = fetch(Machine(cmdline="ds=nocloud"))
        assert run.rc == 2 and no_seed(run.seed), run.stderr
        # a seed server that has neither file: an empty seed, as cloud-init's 404s
        run = fetch(Machine(cmdline=f"ds=nocloud;s={srv.url}/none/"))
    assert run.rc == 0, run.stderr
    assert (run.seed / "user-data").read_bytes() == b""
    assert len(srv.requests) == 2


def test_link_on_cidata_disk_not_followed(fetch, tmp_path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"root-only")
    m = Machine(media={"cidata": {"meta-data": b"instance-id: z\n"}})
    _root, media = m.build(tmp_path)
    (media / "cidata" / "user-data").symlink_to(secret)
    run = fetch(m)
    assert run.rc == 2, run.stderr
    assert "symlink" in run.stderr
