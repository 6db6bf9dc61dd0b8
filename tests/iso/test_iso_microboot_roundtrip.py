"""Each image, extracted, is the labelled disk of the microboot stage.

The microboot entry (``cloudinit_cernvm/microboot/fetch-context``, DESIGN.md
"The microboot entry") must recognise the provider from the disk alone and
write a seed with the same user-data. These tests fail, never skip, while the
entry is absent.
"""

from __future__ import annotations

import json

import pytest
from iso_helpers import (
    HOSTNAME,
    IID,
    USER_DATA,
    extract,
    fake_sysroot,
    fetch_context,
    make_iso,
    make_standard_image,
    public_key,
)

from cloudinit_cernvm import providers
from cloudinit_cernvm.context_image import formats

#: each format: the label it carries, the provider the stage must name for it
PROVIDERS = {fmt: (formats.LABELS[fmt], providers.with_media(fmt).name)
             for fmt in formats.FORMATS}


@pytest.mark.parametrize("fmt", sorted(PROVIDERS))
def test_seed_from_image(tmp_path, fmt):
    label, provider = PROVIDERS[fmt]
    image = tmp_path / "ctx.iso"
    make_standard_image(fmt, tmp_path, image)
    media = tmp_path / "media"
    media.mkdir()
    extract(image, media / label)
    seed = tmp_path / "seed"

    proc = fetch_context(media, fake_sysroot(tmp_path / "root"), seed)

    assert proc.returncode == 0, proc.stderr.decode()
    assert (seed / "source").read_text().strip() == provider
    assert (seed / "user-data").read_bytes() == USER_DATA
    if (seed / "meta-data").exists():  # optional in the seed contract
        meta = json.loads((seed / "meta-data").read_text())
        if fmt != "hepix":  # the HEPiX CD has no instance id of its own
            assert meta.get("instance-id") in (None, IID)
        assert meta.get("local-hostname") in (None, HOSTNAME)
        assert [k.strip() for k in meta.get("public-keys", [public_key()])] == [public_key()]


def test_config_drive_network_data_reaches_the_seed(tmp_path):
    """make-iso --network-data: the stage keeps the image's network_data.json."""
    from tests.fakes import openstack

    raw = json.dumps(openstack.NETWORK_DATA, indent=2).encode()
    (tmp_path / "net.json").write_bytes(raw)
    (tmp_path / "ud").write_bytes(USER_DATA)
    image = tmp_path / "ctx.iso"
    assert make_iso("--format", "configdrive", "--user-data", tmp_path / "ud",
                    "--network-data", tmp_path / "net.json", "--instance-id", IID,
                    "-o", image) == 0
    media = tmp_path / "media"
    media.mkdir()
    tree = extract(image, media / "config-2")
    assert (tree / "openstack/latest/network_data.json").read_bytes() == raw
    seed = tmp_path / "seed"
    proc = fetch_context(media, fake_sysroot(tmp_path / "root"), seed)
    assert proc.returncode == 0, proc.stderr.decode()
    assert (seed / "network-data").read_bytes() == raw
    assert (seed / "network-data").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(("fmt", "content", "message"), [
    ("configdrive", b"{not json", "not valid JSON"),
    ("configdrive", b'{"networks": []}', "an object with a 'links' list"),
    ("opennebula", b'{"links": []}', "for the configdrive format, not opennebula"),
])
def test_network_data_refused(tmp_path, capsys, fmt, content, message):
    (tmp_path / "net.json").write_bytes(content)
    assert make_iso("--format", fmt, "--network-data", tmp_path / "net.json",
                    "-o", tmp_path / "x.iso") == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "x.iso").exists()
