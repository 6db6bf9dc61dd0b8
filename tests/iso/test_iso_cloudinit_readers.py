"""cloud-init's own datasources read the images as they read the clouds' media.

A CernVM image boots with the CernVM datasource, but users also attach these
images to stock cloud images; the oldest and newest cloud-init under test
must find the user-data, the host name and the keys.
"""

from __future__ import annotations

import json

import pytest
from iso_helpers import (
    HOSTNAME,
    IID,
    USER_DATA,
    cloudinit_run,
    extract,
    make_standard_image,
    public_key,
)

VERSIONS = ["20.4.1", "26.2"]

CONFIG_DRIVE = """
import json, sys
from cloudinit.sources import DataSourceConfigDrive as ds
r = ds.read_config_drive(sys.argv[1])
md = r["metadata"]
print(json.dumps({"userdata": r["userdata"].decode() if isinstance(r["userdata"], bytes)
                  else r["userdata"], "uuid": md.get("uuid"),
                  "hostname": md.get("hostname"), "keys": md.get("public_keys"),
                  "version": r.get("version")}))
"""

OPENNEBULA = """
import json, sys
from cloudinit.sources import DataSourceOpenNebula as ds
r = ds.read_context_disk_dir(sys.argv[1], None)
ud = r["userdata"]
print(json.dumps({"userdata": ud.decode() if isinstance(ud, bytes) else ud,
                  "hostname": r["metadata"].get("local-hostname"),
                  "keys": r["metadata"].get("public-keys")}))
"""


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    base = tmp_path_factory.mktemp("readers")
    out = {}
    for fmt in ("opennebula", "configdrive", "cloudstack", "nocloud"):
        image = base / f"{fmt}.iso"
        make_standard_image(fmt, base, image)
        out[fmt] = extract(image, base / fmt)
    return out


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("fmt", ["configdrive", "cloudstack"])
def test_config_drive_datasource(trees, version, fmt):
    got = json.loads(cloudinit_run(version, CONFIG_DRIVE, str(trees[fmt])))
    assert got["userdata"] == USER_DATA.decode()
    assert got["uuid"] == IID
    assert got["hostname"] == HOSTNAME
    assert list(got["keys"].values()) == [public_key() + "\n"]
    assert got["version"] == 2


@pytest.mark.parametrize("version", VERSIONS)
def test_opennebula_datasource(trees, version):
    got = json.loads(cloudinit_run(version, OPENNEBULA, str(trees["opennebula"])))
    assert got["userdata"] == USER_DATA.decode()
    assert got["hostname"] == HOSTNAME
    assert got["keys"] == [public_key()]


NOCLOUD = """
import json, sys
from cloudinit import util
r = util.pathprefix2dict(sys.argv[1], required=["user-data", "meta-data"])
md = util.load_yaml(r["meta-data"])
print(json.dumps({"userdata": r["user-data"].decode(), "iid": md.get("instance-id"),
                  "hostname": md.get("local-hostname"), "keys": md.get("public-keys")}))
"""


@pytest.mark.parametrize("version", VERSIONS)
def test_nocloud_seed_disk(trees, version):
    """What cloud-init's NoCloud reads from a cidata disk: both files, the
    meta-data through its YAML loader."""
    got = json.loads(cloudinit_run(version, NOCLOUD, str(trees["nocloud"])))
    assert got == {"userdata": USER_DATA.decode(), "iid": IID, "hostname": HOSTNAME,
                   "keys": [public_key()]}
