"""Real cloud-init (each release under test) accepts every converted real context.

All of ``tests/data/real/`` goes through one batch per release: cloud-init's
own ``UserDataProcessor`` reads each converted document in-process (one
subprocess per release, ``test_userdata_parser.check_batch``) and must see
exactly the parts the converter wrote, in order, with their CernVM script
markers.
"""

from __future__ import annotations

from pathlib import Path

from cloudinit_cernvm import cli
from tests.cloudinit.test_userdata_parser import check_batch

REAL = Path(__file__).resolve().parents[1] / "data" / "real"


def test_every_real_context_reaches_cloud_init_as_converted(tmp_path):
    corpus = sorted(p for p in REAL.iterdir() if p.name != "SOURCES")
    check_batch([cli.read_user_data(str(p)) for p in corpus], tmp_path)
