"""fetch-context against hostile answers: a metadata service, a context
disk or the user-data controlled by an attacker writes nothing outside the
stage's work and seed directories."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fakes.metadata import Instance, MetadataService

from .conftest import Machine

GCE = Machine(dmi={"product_name": "Google Compute Engine"})
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
