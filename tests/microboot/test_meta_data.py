"""The seed's meta-data is JSON text whatever bytes the service sent."""

from __future__ import annotations

import json

from tests.fakes import ec2
from tests.fakes.metadata import MetadataService

from .conftest import Machine

EC2 = Machine(dmi=ec2.DMI)
KEY = "/latest/meta-data/public-keys/0/openssh-key"
HOSTNAME = "/latest/meta-data/local-hostname"


def test_values_that_are_not_utf8_are_dropped(fetch) -> None:
    answers = {KEY: (200, b"ssh-ed25519 \x80\xff broken\n"), HOSTNAME: (200, "vm-\u00e9".encode())}
    with MetadataService("EC2", b"data", answers=answers) as svc:
        run = fetch(EC2, svc.url)
    assert run.rc == 0, run.stderr
    meta = json.loads((run.seed / "meta-data").read_bytes().decode("utf-8"))
    assert "public-keys" not in meta
    assert meta["local-hostname"] == "vm-\u00e9"
    assert "meta-data public-keys is not UTF-8 text: dropped" in run.stderr
