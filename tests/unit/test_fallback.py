"""The fallback's choices: plain functions, no cloud-init."""

from __future__ import annotations

import pytest

from cloudinit_cernvm import fallback, providers


@pytest.mark.parametrize(
    ("provider", "dsname", "stage"),
    [
        ("EC2", "Ec2", "network"),
        ("GCE", "GCE", "network"),
        ("Azure", "Azure", "local"),
        ("OpenStack", "OpenStack", "network"),
        ("ConfigDrive", "ConfigDrive", "local"),
        ("CloudStack", "CloudStack", "network"),
        ("OpenNebula", "OpenNebula", "local"),
        ("NoCloud", "NoCloud", "local"),
    ],
)
def test_each_provider_hands_over_to_cloud_inits_own_datasource(provider, dsname, stage):
    delegate = fallback.delegate_for(provider)
    assert delegate is not None
    assert (delegate.dsname, delegate.stage) == (dsname, stage)
    assert delegate.module == f"cloudinit.sources.DataSource{dsname}"
    assert delegate.class_name == f"DataSource{dsname}"


def test_vsphere_and_unknown_names_have_no_delegate():
    assert fallback.delegate_for("vSphere") is None
    assert fallback.delegate_for("Hetzner") is None
    assert fallback.delegate_for("ec2") is None  # canonical spellings only


def test_every_known_provider_but_vsphere_has_a_delegate():
    missing = {p for p in providers.NAMES if fallback.delegate_for(p) is None}
    assert missing == {"vSphere"}


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("metadata (http://169.254.169.254)", "fallback (Ec2: http://169.254.169.254)"),
        ("seed-dir (/var/lib/cloud/seed/config_drive)",
         "fallback (Ec2: /var/lib/cloud/seed/config_drive)"),
        ("unknown", "fallback (Ec2)"),
        ("", "fallback (Ec2)"),
        ("something plain", "fallback (Ec2: something plain)"),
    ],
)
def test_subplatform_names_the_delegate_and_where_it_read(given, shown):
    assert fallback.subplatform("Ec2", given) == shown


@pytest.mark.parametrize(
    ("cfg", "disabled"),
    [({"network": {"config": "disabled"}}, True), ({"network": {"version": 2}}, False),
     ({}, False), ({"network": "junk"}, False)],
)
def test_network_config_disabled(cfg, disabled):
    assert fallback.network_config_disabled(cfg) is disabled


def test_a_silent_service_bounds_the_delegates_wait():
    cfg = {"datasource": {"Ec2": {"timeout": 7}, "CernVM": {"seed_dir": "/x"}}, "other": 1}
    bounded = fallback.delegate_config(cfg, "Ec2", "silent")
    assert bounded["datasource"]["Ec2"] == {"max_wait": 5, "timeout": 7, "retries": 0}
    assert bounded["datasource"]["CernVM"] == {"seed_dir": "/x"} and bounded["other"] == 1
    assert cfg["datasource"]["Ec2"] == {"timeout": 7}  # the system config is not changed
    assert fallback.delegate_config({}, "OpenStack", "silent")["datasource"] == {
        "OpenStack": fallback.SILENT_WAIT}


@pytest.mark.parametrize("kind", ["", "unavailable", "unreachable", "slow", "cut", "deadline"])
def test_other_failures_keep_the_delegates_own_patience(kind):
    cfg = {"datasource": {}}
    assert fallback.delegate_config(cfg, "Ec2", kind) is cfg


class _Azure:
    """Stands for cloud-init's Azure datasource after it read its data."""

    def __init__(self, negotiated: object) -> None:
        self._negotiated = negotiated


@pytest.mark.parametrize(("delegate", "want"), [
    (_Azure(True), True),     # it reported ready while it read (22.x+)
    (_Azure(False), False),   # it did not (no ephemeral networking)
    (_Azure(None), False),
    (object(), False),        # a release or datasource without the flag
])
def test_a_ready_report_made_by_the_delegate_is_not_made_again(delegate, want):
    assert fallback.reported_ready(delegate) is want


def test_the_delegate_reads_in_a_child_and_its_result_comes_back():
    assert fallback.read_in_child(lambda: {"meta-data": {"instance-id": "i-1"}, "pid": None},
                                5) == {"meta-data": {"instance-id": "i-1"}, "pid": None}
    import os

    assert fallback.read_in_child(os.getpid, 5) != os.getpid()


def test_what_the_delegate_raises_is_one_line_and_no_crash():
    def read():
        raise ValueError("bad answer from 169.254.169.254")

    with pytest.raises(fallback.DelegateFailed, match="ValueError: bad answer"):
        fallback.read_in_child(read, 5)


def test_a_delegate_stuck_in_a_thread_ends_at_the_limit():
    """A worker thread blocked for good (cloud-init 22.x reads in threads, one
    request with no time-out) cannot be stopped in-process: the child dies."""
    import threading
    import time

    def read():
        stuck = threading.Thread(target=threading.Event().wait)  # not a daemon
        stuck.start()
        stuck.join()

    started = time.monotonic()
    with pytest.raises(fallback.DelegateTimeout, match="did not finish within 1 s"):
        fallback.read_in_child(read, 1)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(("cfg", "failure", "want"), [
    ({}, "", fallback.DELEGATE_LIMIT),
    ({"fallback_timeout": 30}, "", 30.0),
    ({"fallback_timeout": "x"}, "", fallback.DELEGATE_LIMIT),
    ({"fallback_timeout": -1}, "", fallback.DELEGATE_LIMIT),
    ({}, "silent", fallback.SILENT_LIMIT),
    ({"fallback_timeout": 6}, "silent", 6.0),
])
def test_the_delegates_limit(cfg, failure, want):
    assert fallback.delegate_limit(cfg, failure) == want
