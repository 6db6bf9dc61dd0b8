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
    make_standard_image,
    public_key,
)

PROVIDERS = {
    "hepix": ("CONTEXT", "OpenNebula"),
    "opennebula": ("CONTEXT", "OpenNebula"),
    "configdrive": ("config-2", "ConfigDrive"),
    "cloudstack": ("config-2", "CloudStack"),
    "nocloud": ("cidata", "NoCloud"),
}


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
