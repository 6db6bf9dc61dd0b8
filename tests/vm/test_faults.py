"""Whole boots of the microboot stage under a faulty metadata service (issue
17): EC2 and OpenStack, a few cases only (each boot is emulated)."""

from __future__ import annotations

import pytest

from tests.fakes.metadata import Fault

from . import conftest, image, providers
from .providers import CLOUDS, USER_DATA


@pytest.mark.parametrize(("name", "fault"), [("EC2", "503:5"), ("OpenStack", "drop:3")])
def test_a_loaded_service_is_waited_out(vm_image: image.VMImage, tmp_path, name: str,
                                        fault: str) -> None:
    res, requests = providers.boot(CLOUDS[name], tmp_path, fault=Fault.parse(fault),
                                   timeout=150, image=vm_image)
    conftest.record_boot(f"faults::{name}-{fault}", res)
    assert res.powered_off and not res.timed_out, res.serial[-3000:]
    assert res.exit_status == 0, res.fetch_stderr
    assert "trying again" in res.fetch_stderr
    assert res.seed is not None and res.seed["user-data"] == USER_DATA
    assert any(r.status == 200 for r in requests), requests


def test_a_silent_service_leaves_the_marker_in_time(vm_image: image.VMImage, tmp_path) -> None:
    res, _requests = providers.boot(CLOUDS["OpenStack"], tmp_path, fault=Fault("silent"),
                                    cmdline="cernvm.retry=6", timeout=150, image=vm_image)
    conftest.record_boot("faults::OpenStack-silent", res)
    assert res.powered_off and not res.timed_out, res.serial[-3000:]
    assert res.exit_status == 2, res.fetch_stderr
    assert res.fetch_ms is not None and res.fetch_ms < (6 + 2 * 4 + 2) * 1000, res.fetch_ms
    assert res.seed is not None and sorted(res.seed) == ["failure", "source"]
    assert res.seed["source"] == b"OpenStack\n"
    assert res.seed["failure"].startswith(b"silent: connected, no answer")
