"""Shared fixtures: the cloud-init releases under test and sandboxed machines."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.harness import sandbox

RELEASES = sandbox.wanted_releases()


def pytest_collection_modifyitems(config, items):
    """Tests of real cloud-init need root for the mount namespace."""
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root (private mount namespace)")
    for item in items:
        if "release" in getattr(item, "fixturenames", ()):
            item.add_marker(skip)


@pytest.fixture(params=RELEASES, ids=[f"cloud-init-{r}" for r in RELEASES])
def release(request) -> str:
    """Each supported cloud-init release in turn; a failure names it."""
    return request.param


@pytest.fixture
def machine_factory(tmp_path: Path, release: str):
    """Make sandboxed machines of the release under test."""
    count = 0

    def make(**kwargs) -> sandbox.Machine:
        nonlocal count
        count += 1
        return sandbox.Machine(tmp_path / f"machine{count}", release, **kwargs)

    return make


@pytest.fixture
def machine(machine_factory) -> sandbox.Machine:
    """One sandboxed machine of the release under test."""
    return machine_factory()
