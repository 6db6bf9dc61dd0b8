"""``make-iso --format vsphere``: µCernVM's CD of user-data.txt, and nothing else."""

from __future__ import annotations

from iso_helpers import USER_DATA, extract, make_iso, read_tree


def test_the_cd_holds_user_data_txt_alone(tmp_path) -> None:
    (tmp_path / "ud").write_bytes(USER_DATA)
    image = tmp_path / "cd.iso"
    assert make_iso("--format", "vsphere", "--user-data", tmp_path / "ud", "-o", image) == 0
    media = tmp_path / "media"
    media.mkdir()
    assert read_tree(extract(image, media / "user-data")) == {"user-data.txt": USER_DATA}


def test_identity_options_are_refused_not_dropped(tmp_path, capsys) -> None:
    image = tmp_path / "cd.iso"
    assert make_iso("--format", "vsphere", "--hostname", "cvm01", "-o", image) != 0
    err = capsys.readouterr().err
    assert "do not go with --format vsphere" in err and "user-data.txt only" in err
    assert not image.exists()
