"""``cernvm-context show`` lists the seed's vendor-data files: which, how
large, whether used; never their content (a site's vendor-data may hold
credentials)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.unit.test_cli import run


def seed_with(tmp_path: Path, **files: bytes) -> Path:
    seed = tmp_path / "context"
    seed.mkdir(mode=0o700, parents=True)
    for name, data in {"source": b"OpenStack\n", "user-data": b"", **files}.items():
        (seed / name.replace("_", "-")).write_bytes(data)
        (seed / name.replace("_", "-")).chmod(0o600)
    return seed


def show(seed: Path, *more: str):
    return run("show", "--seed-dir", str(seed), "--cloud-dir", str(seed.parent / "cloud"), *more)


def test_show_lists_vendor_data_without_its_content(tmp_path: Path) -> None:
    vd = json.dumps({"cloud-init": "#cloud-config\npassword: s3cret\n"}).encode()
    seed = seed_with(tmp_path, vendor_data=vd, vendor_data2=b'{"token": "s3cret"')
    human, as_json = show(seed), show(seed, "--json")
    assert human.returncode == 0, human.stderr
    out = human.stdout.decode()
    assert (f"vendor:     vendor-data (vendor_data.json, {len(vd)} bytes), "
            "vendor-data2 (vendor_data2.json, 18 bytes, not used)") in out
    report = json.loads(as_json.stdout)
    assert report["vendor_data"] == {
        "vendor-data": {"bytes": len(vd), "from": "vendor_data.json", "valid": True},
        "vendor-data2": {"bytes": 18, "from": "vendor_data2.json", "valid": False}}
    assert any("vendor-data2: not valid JSON" in p for p in report["seed_problems"])
    for text in (out, as_json.stdout.decode()):
        assert "s3cret" not in text


def test_show_without_vendor_data(tmp_path: Path) -> None:
    done = show(seed_with(tmp_path))
    assert done.returncode == 0 and "vendor:     none" in done.stdout.decode()
    assert json.loads(show(seed_with(tmp_path / "j"), "--json").stdout)["vendor_data"] == {}
