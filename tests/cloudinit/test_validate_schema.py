"""``cernvm-context validate`` checks cloud-config by the schema of the cloud-init it finds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("CERNVM_CACHE", Path.home() / ".cache" / "cloudinit-cernvm"))


def releases() -> list[str]:
    lines = (TESTS / "cloudinit-versions").read_text().splitlines()
    return [line.split()[1] for line in lines if line.strip() and not line.startswith("#")]


def validate_with(version: str, data: bytes) -> subprocess.CompletedProcess:
    site = CACHE / "cloud-init" / version / "usr" / "lib" / "python3" / "dist-packages"
    assert (site / "cloudinit").is_dir(), f"cloud-init {version} missing: run tools/bootstrap"
    return subprocess.run(
        [sys.executable, "-m", "cloudinit_cernvm", "validate"],
        input=data,
        capture_output=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": str(site)},
    )


@pytest.mark.parametrize("version", releases())
def test_schema_errors_are_reported_where_cloud_init_is_importable(version):
    bad = validate_with(version, b"[cernvm]\nx = 1\n#cloud-config\nruncmd: 5\n")
    assert bad.returncode == 1, f"cloud-init {version}: {bad.stdout!r} {bad.stderr!r}"
    assert bad.stdout.decode() == "line 3: cloud-config runcmd: 5 is not of type 'array'\n", version
    good = validate_with(version, b"[cernvm]\nx = 1\n#cloud-config\nruncmd: [ls]\n")
    assert good.returncode == 0, f"cloud-init {version}: {good.stdout!r} {good.stderr!r}"
