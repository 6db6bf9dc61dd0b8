"""The provider's vendor-data in the seed: OpenStack's metadata service and
config drive (``vendor_data.json``, ``vendor_data2.json``) fetched in the
same pass as the user-data, kept as given in ``vendor-data`` and
``vendor-data2`` (0600, written with the rest of the seed, bounded), none
when the provider has none, and never a line for that."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fakes import openstack
from tests.fakes.metadata import Instance, MetadataService

from .conftest import Machine, run_fetch, seed_files

UD = b"#cloud-config\nruncmd: [[touch, /user]]\n"
NOVA = Machine(dmi=openstack.DMI)
VD = json.dumps({"cloud-init": "#cloud-config\nruncmd: [[touch, /vendor]]\n",
                 "static": {"proxy": "http://squid.site:3128"}}, indent=2).encode()
VD2 = json.dumps({"registration": {"token": "s3cret"},
                  "cloud-init": "#!/bin/sh\necho site\n"}).encode()
BASE = "/openstack/latest"


def vendor(files: dict[str, bytes]) -> dict[str, bytes]:
    return {k: v for k, v in files.items() if k.startswith("vendor-data")}


# --- the metadata service ------------------------------------------------------

def test_openstack_vendor_data_in_the_same_pass(fetch) -> None:
    with MetadataService("OpenStack", UD, instance=Instance(vendor_data=VD,
                                                            vendor_data2=VD2)) as svc:
        run = fetch(NOVA, svc.url)
    assert run.rc == 0, run.stderr
    files = seed_files(run.seed)  # asserts 0700 and 0600
    assert files["user-data"] == UD
    assert vendor(files) == {"vendor-data": VD, "vendor-data2": VD2}
    # four requests (one curl run), each asked once
    assert len(svc.requests) == 5  # user-data, meta-data, network, both vendor files
    for name in ("user_data", "meta_data.json", "vendor_data.json", "vendor_data2.json"):
        assert svc.count("GET", f"{BASE}/{name}") == 1, name
    assert "OpenStack: fetched (5 requests" in run.stderr
    assert "s3cret" not in run.stderr


def test_no_vendor_data_is_normal_and_said_nowhere(fetch) -> None:
    """A nova before Newton (no vendor_data2.json) or a service without either: 404."""
    with MetadataService("OpenStack", UD, instance=Instance(vendor_data=None,
                                                            vendor_data2=None)) as svc:
        run = fetch(NOVA, svc.url)
    assert run.rc == 0, run.stderr
    assert vendor(seed_files(run.seed)) == {}
    assert ".json" not in run.stderr and "status 404" not in run.stderr
    assert "WARNING" not in run.stderr.upper()


def test_only_vendor_data2_missing(fetch) -> None:
    with MetadataService("OpenStack", UD, instance=Instance(vendor_data=VD,
                                                            vendor_data2=None)) as svc:
        run = fetch(NOVA, svc.url)
    assert run.rc == 0, run.stderr
    assert vendor(seed_files(run.seed)) == {"vendor-data": VD}


def test_vendor_data_is_kept_as_given_even_when_broken(fetch) -> None:
    """The stage parses no vendor-data: the datasource judges it, the seed keeps it."""
    broken = b'{"cloud-init": "#cloud-config\\n' + b"x" * 10
    with MetadataService("OpenStack", UD, instance=Instance(vendor_data=broken)) as svc:
        run = fetch(NOVA, svc.url)
    assert run.rc == 0, run.stderr
    assert seed_files(run.seed)["vendor-data"] == broken


def test_vendor_data_over_its_cap_is_not_taken(fetch) -> None:
    big = b'{"cloud-init": "' + b"x" * 300_000 + b'"}'
    with MetadataService("OpenStack", UD, answers={
            f"{BASE}/vendor_data.json": (200, big)}) as svc:
        run = fetch(NOVA, svc.url)
    assert run.rc == 0, run.stderr
    files = seed_files(run.seed)
    assert files["user-data"] == UD and "vendor-data" not in files
    assert files["vendor-data2"] == b"{}"
    assert "vendor-data: answer larger than 262144 bytes: refused" in run.stderr


def test_a_failing_vendor_data_costs_no_user_data(fetch) -> None:
    """A vendor-data service down (500) leaves the user's context whole."""
    with MetadataService("OpenStack", UD, answers={
            f"{BASE}/vendor_data2.json": (500, b"Internal Server Error")}) as svc:
        run = fetch(NOVA, svc.url)
    assert run.rc == 0, run.stderr
    files = seed_files(run.seed)
    assert files["user-data"] == UD and files["vendor-data"] == b"{}"
    assert "vendor-data2" not in files
    assert "vendor_data2.json: status 500" in run.stderr


def test_an_old_instances_vendor_data_goes(fetch, tmp_path: Path) -> None:
    """A seed rewritten for a provider without vendor-data keeps none of the old."""
    seed = tmp_path / "seed"
    seed.mkdir(mode=0o700)
    for name, data in (("source", b"OpenStack\n"), ("user-data", b"old"),
                       ("vendor-data", VD), ("vendor-data2", VD2)):
        (seed / name).write_bytes(data)
    with MetadataService("OpenStack", UD, instance=Instance(vendor_data=None,
                                                            vendor_data2=None)) as svc:
        run = fetch(NOVA, svc.url)
    assert run.rc == 0, run.stderr
    files = seed_files(run.seed)
    assert files["user-data"] == UD and vendor(files) == {}


# --- the config drive --------------------------------------------------------------

def drive(**files: bytes) -> Machine:
    tree = {"openstack/latest/user_data": UD,
            "openstack/latest/meta_data.json": b'{"uuid": "u-1"}'}
    tree.update({f"openstack/latest/{k}.json": v for k, v in files.items()})
    return Machine(media={"config-2": tree})


def test_config_drive_vendor_data(fetch) -> None:
    run = fetch(drive(vendor_data=VD, vendor_data2=VD2))
    assert run.rc == 0, run.stderr
    assert vendor(seed_files(run.seed)) == {"vendor-data": VD, "vendor-data2": VD2}


def test_config_drive_without_vendor_data(fetch) -> None:
    run = fetch(drive())
    assert run.rc == 0, run.stderr
    assert vendor(seed_files(run.seed)) == {}
    assert ".json" not in run.stderr


def test_config_drive_vendor_data_over_its_cap(fetch) -> None:
    run = fetch(drive(vendor_data=b"[" + b'"x",' * 70_000 + b'"x"]', vendor_data2=VD2))
    assert run.rc == 0, run.stderr
    assert vendor(seed_files(run.seed)) == {"vendor-data2": VD2}
    assert run.stderr.count("vendor_data.json: more than 262144 bytes: not taken") == 1


def test_config_drive_vendor_data_through_a_link_is_refused(bbpath: Path,
                                                            tmp_path: Path) -> None:
    """A link on the disk could name a file of this machine: never read."""
    secret = tmp_path / "secret"
    secret.write_bytes(b"host's own file")
    m = drive()
    _root, media = m.build(tmp_path)
    (media / "config-2/openstack/latest/vendor_data.json").symlink_to(secret)
    run = run_fetch(bbpath, tmp_path, m)
    assert run.rc == 0, run.stderr
    assert vendor(seed_files(run.seed)) == {}
    assert "vendor_data.json on the disk is reached through a symlink; not read" in run.stderr
