"""``cernvm-context validate`` checks cloud-config by the schema of the cloud-init it finds."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.harness import sandbox


def validate_with(version: str, data: bytes) -> subprocess.CompletedProcess:
    site = sandbox.site_packages(version)
    return subprocess.run(
        [sys.executable, "-m", "cloudinit_cernvm", "validate"],
        input=data,
        capture_output=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": str(site)},
    )


@pytest.mark.parametrize("version", sandbox.wanted_releases())
def test_schema_errors_are_reported_where_cloud_init_is_importable(version):
    bad = validate_with(version, b"[cernvm]\nshell = x\n#cloud-config\nruncmd: 5\n")
    assert bad.returncode == 1, f"cloud-init {version}: {bad.stdout!r} {bad.stderr!r}"
    assert bad.stdout.decode() == (
        "line 3: cloud-config runcmd: 5 is not of type 'array' [cloud-config-schema]\n"
    ), version
    good = validate_with(version, b"[cernvm]\nshell = x\n#cloud-config\nruncmd: [ls]\n")
    assert good.returncode == 0, f"cloud-init {version}: {good.stdout!r} {good.stderr!r}"
