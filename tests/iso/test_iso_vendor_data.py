"""``make-iso --format configdrive --vendor-data FILE``: the site's
vendor_data.json (and vendor_data2.json) on the drive where nova puts them,
checked as JSON, and read back by the microboot stage into the seed."""

from __future__ import annotations

import json

from iso_helpers import USER_DATA, extract, fake_sysroot, fetch_context, make_iso, read_tree

VD = json.dumps({"cloud-init": "#cloud-config\nruncmd: [[touch, /site]]\n"}).encode()
VD2 = b'{"registration": {"url": "https://reg.site"}}\n'


def test_vendor_data_on_the_drive_and_in_the_seed(tmp_path) -> None:
    (tmp_path / "ud").write_bytes(USER_DATA)
    (tmp_path / "vd").write_bytes(VD)
    (tmp_path / "vd2").write_bytes(VD2)
    image = tmp_path / "cd.iso"
    assert make_iso("--format", "configdrive", "--user-data", tmp_path / "ud",
                    "--vendor-data", tmp_path / "vd", "--vendor-data2", tmp_path / "vd2",
                    "-o", image) == 0
    media = tmp_path / "media"
    media.mkdir()
    tree = read_tree(extract(image, media / "config-2"))
    assert tree["openstack/latest/vendor_data.json"] == VD
    assert tree["openstack/latest/vendor_data2.json"] == VD2
    assert "openstack/2012-08-10/vendor_data.json" not in tree  # before Havana: none
    seed = tmp_path / "seed"
    proc = fetch_context(media, fake_sysroot(tmp_path / "root"), seed)
    assert proc.returncode == 0, proc.stderr.decode()
    assert (seed / "vendor-data").read_bytes() == VD
    assert (seed / "vendor-data2").read_bytes() == VD2
    assert (seed / "vendor-data").stat().st_mode & 0o777 == 0o600


def test_without_vendor_data_the_drive_has_novas_empty_one(tmp_path) -> None:
    (tmp_path / "ud").write_bytes(USER_DATA)
    image = tmp_path / "cd.iso"
    assert make_iso("--format", "configdrive", "--user-data", tmp_path / "ud", "-o", image) == 0
    tree = read_tree(extract(image, tmp_path / "x"))
    assert tree["openstack/latest/vendor_data.json"] == b"{}"
    assert "openstack/latest/vendor_data2.json" not in tree


def _fails(tmp_path, capsys, *argv) -> str:
    rc = make_iso(*argv, "-o", tmp_path / "out.iso")
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "Traceback" not in err, err
    assert not (tmp_path / "out.iso").exists()
    return err


def test_vendor_data_that_is_not_json_is_refused(tmp_path, capsys) -> None:
    (tmp_path / "vd").write_bytes(b'{"cloud-init": ')
    err = _fails(tmp_path, capsys, "--format", "configdrive", "--vendor-data", tmp_path / "vd")
    assert err.startswith(f"cernvm-context make-iso: --vendor-data {tmp_path / 'vd'}: not JSON")
    (tmp_path / "vd").write_bytes(b"42")
    err = _fails(tmp_path, capsys, "--format", "configdrive", "--vendor-data2", tmp_path / "vd")
    assert "must hold a JSON object, list or string" in err


def test_vendor_data_over_the_stages_cap_is_refused(tmp_path, capsys) -> None:
    (tmp_path / "vd").write_bytes(json.dumps("x" * 262144).encode())
    err = _fails(tmp_path, capsys, "--format", "configdrive", "--vendor-data", tmp_path / "vd")
    assert "larger than 262144 bytes" in err


def test_vendor_data_goes_with_configdrive_only(tmp_path, capsys) -> None:
    (tmp_path / "vd").write_bytes(VD)
    err = _fails(tmp_path, capsys, "--format", "nocloud", "--vendor-data", tmp_path / "vd")
    assert "--vendor-data and --vendor-data2 go with --format configdrive only" in err
