"""GCE through vcycle: the attribute cvm-user-data (base64), taken from the
instance JSON the stage fetches anyway, only when user-data is absent or
empty (vcycle always sets user-data; cvm-user-data is its wrapper for
CernVM 3's amiconfig)."""

from __future__ import annotations

import base64
import json

import pytest

from tests.fakes import gce
from tests.fakes.metadata import Instance, MetadataService

from .conftest import Machine, no_seed

GCE = Machine(dmi=gce.DMI)
CVM = b"#! /bin/bash\nexit 0\n[amiconfig]\nplugins=cernvm\n[ucernvm-begin]\nresize_rootfs=off\n" \
      b"[ucernvm-end]\n"
PATH = "/computeMetadata/v1/instance/attributes/user-data"


@pytest.mark.parametrize("user_data", [None, b""], ids=["absent", "empty"])
def test_cvm_user_data_when_user_data_is_missing(fetch, user_data: bytes | None) -> None:
    inst = Instance(attributes={"cvm-user-data": base64.b64encode(CVM).decode()})
    with MetadataService("GCE", user_data, instance=inst) as svc:
        run = fetch(GCE, svc.url)
    assert run.rc == 0, run.stderr
    assert (run.seed / "user-data").read_bytes() == CVM
    assert (run.seed / "ucontext").read_bytes() == b"_UCONTEXT_RESIZE_ROOTFS=0\n"
    assert json.loads((run.seed / "meta-data").read_bytes())["instance-id"] == \
        "4520031799277581759"
    assert len(svc.requests) == 2  # unchanged: cvm-user-data came in the instance JSON
    assert "cvm-user-data" in run.stderr


def test_user_data_wins_over_cvm_user_data(fetch) -> None:
    inst = Instance(attributes={"cvm-user-data": base64.b64encode(CVM).decode()})
    with MetadataService("GCE", b"From nobody\nMIME-Version: 1.0\n", instance=inst) as svc:
        run = fetch(GCE, svc.url)
    assert run.rc == 0, run.stderr
    assert (run.seed / "user-data").read_bytes().startswith(b"From nobody")
    assert len(svc.requests) == 2


def test_bad_cvm_user_data_is_exit_2(fetch) -> None:
    inst = Instance(attributes={"cvm-user-data": "!! not base64 !!"})
    with MetadataService("GCE", None, instance=inst) as svc:
        run = fetch(GCE, svc.url)
    assert run.rc == 2 and no_seed(run.seed)
    assert "GCE cvm-user-data is not valid base64" in run.stderr
