"""The stage's bounded retry and its marker (issue 17): transient answers tried
again within the budget (``cernvm.retry=SECONDS``), definite ones not, the
watchdog's deadline following the budget, and ``source`` + ``failure``
without ``user-data`` when the provider was recognised but gave nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes import ec2 as ec2_fake
from tests.fakes import openstack as openstack_fake
from tests.fakes.metadata import Fault, MetadataService

from .conftest import Machine, is_marker, seed_files

UD = b"#cloud-config\nruncmd: [[echo, hi]]\n"
#: the stage's runs here take their budget from the kernel command line only
NO_TEST_BUDGET = {"CERNVM_RETRY_S": None}


def ec2(retry: str | None = None) -> Machine:
    words = "BOOT_IMAGE=/vmlinuz quiet" + (f" cernvm.retry={retry}" if retry is not None else "")
    return Machine(dmi=ec2_fake.DMI, cmdline=words)


def openstack(retry: str | None = None) -> Machine:
    words = "BOOT_IMAGE=/vmlinuz quiet" + (f" cernvm.retry={retry}" if retry is not None else "")
    return Machine(dmi=openstack_fake.DMI, cmdline=words)


@pytest.mark.parametrize("fault", ["503:3", "429:3", "refuse:3", "drop:3"])
def test_a_transient_fault_is_waited_out(fetch, fault: str) -> None:
    with MetadataService("EC2", UD, fault=Fault.parse(fault)) as svc:
        run = fetch(ec2("10"), svc.url, env=NO_TEST_BUDGET)
    assert run.rc == 0, run.stderr
    assert seed_files(run.seed)["user-data"] == UD
    assert "trying again" in run.stderr
    assert run.seconds < 3 + 3, run.stderr  # the fault's time and one pause at most
    assert svc.count("GET", "/latest/user-data") == 1 or fault.startswith("drop")


def test_the_happy_path_keeps_its_requests_and_time(fetch) -> None:
    with MetadataService("EC2", UD) as svc:
        run = fetch(ec2("30"), svc.url, env=NO_TEST_BUDGET)
    assert run.rc == 0, run.stderr
    assert len(svc.requests) == 10 and run.seconds < 2
    assert "trying again" not in run.stderr


def test_a_definite_404_ends_at_once(fetch) -> None:
    """No user-data (404): the user gave none, an empty seed at once."""
    with MetadataService("OpenStack", None) as svc:
        run = fetch(openstack("30"), svc.url, env=NO_TEST_BUDGET)
    assert run.rc == 0 and run.seconds < 2, run.stderr
    assert seed_files(run.seed)["user-data"] == b""
    assert svc.count("GET", "/openstack/latest/user_data") == 1
    assert "trying again" not in run.stderr


def test_the_budget_ends_the_retries_and_leaves_the_marker(fetch) -> None:
    with MetadataService("EC2", UD, fault=Fault("503")) as svc:
        run = fetch(ec2("4"), svc.url, env=NO_TEST_BUDGET)
    assert run.rc == 2
    assert 4 <= run.seconds < 4 + 4 + 1, run.stderr
    tries = svc.count("PUT", "/latest/api/token")
    assert 4 <= tries <= 6, run.stderr  # 0, 1, 2, 3 (and 4) s
    assert is_marker(run.seed)
    assert (run.seed / "source").read_text() == "EC2\n"
    failure = (run.seed / "failure").read_text()
    assert failure.startswith("unavailable: status 503 (") and failure.count("\n") == 1
    assert {p.stat().st_mode & 0o777 for p in run.seed.iterdir()} == {0o600}
    assert run.seed.stat().st_mode & 0o777 == 0o700


def test_a_silent_service_is_tried_again_within_the_budget(fetch) -> None:
    with MetadataService("EC2", UD, fault=Fault("silent")) as svc:
        run = fetch(ec2("6"), svc.url, env=NO_TEST_BUDGET)
    assert run.rc == 2 and run.seconds < 6 + 4 + 1, run.stderr
    assert svc.count("PUT", "/latest/api/token") == 2  # 4 s each: at 0 and 5 s
    assert (run.seed / "failure").read_text().startswith("silent: connected, no answer")


def test_a_service_silent_twice_in_a_row_is_not_waited_for_any_longer(fetch) -> None:
    """Connected and no answer, twice: not a loaded service (that answers,
    503 at least); the stage stops long before its 25 s budget, so that a
    silent service costs at most 30 s with the fallback's short try."""
    with MetadataService("EC2", UD, fault=Fault("silent")) as svc:
        run = fetch(ec2("25"), svc.url, env=NO_TEST_BUDGET)
    assert run.rc == 2 and run.seconds < 4 + 1 + 4 + 2, run.stderr
    assert svc.count("PUT", "/latest/api/token") == 2
    assert "connected, no answer after 2 tries" in run.stderr
    assert (run.seed / "failure").read_text().startswith("silent: connected, no answer")


def test_a_slow_answer_is_bounded(fetch) -> None:
    with MetadataService("OpenStack", UD, fault=Fault("slow")) as svc:
        run = fetch(openstack("3"), svc.url, env=NO_TEST_BUDGET)
    # one try: three answers (user_data, meta_data.json, network_data.json) of
    # 4 s each in one curl run
    assert run.rc == 2 and run.seconds < 3 + 3 * 4 + 1, run.stderr
    assert (run.seed / "failure").read_text().startswith("slow: ")


def test_no_retry_with_a_budget_of_0(fetch) -> None:
    with MetadataService("EC2", UD, fault=Fault("503")) as svc:
        run = fetch(ec2("0"), svc.url, env=NO_TEST_BUDGET)
    assert run.rc == 2 and svc.count("PUT", "/latest/api/token") == 1


@pytest.mark.parametrize(("word", "said"), [
    ("abc", "cernvm.retry: not a number of seconds; 25 s"),
    ("9" * 200, "cernvm.retry: more than 30 s; 30 s"),
    ("31", "cernvm.retry: more than 30 s; 30 s"),
])
def test_a_bad_budget_is_one_line(fetch, word: str, said: str) -> None:
    run = fetch(ec2(word), "http://127.0.0.1:9", args=["--detect"], env=NO_TEST_BUDGET)
    assert run.rc == 0 and run.stderr.count(said) == 1, run.stderr


def test_the_deadline_follows_the_budget(fetch) -> None:
    """A budget past the old fixed 15 s deadline: the watchdog waits for it."""
    with MetadataService("OpenStack", UD, fault=Fault.parse("503:16")) as svc:
        run = fetch(openstack("25"), svc.url, env=NO_TEST_BUDGET)
    assert run.rc == 0, run.stderr
    assert 16 <= run.seconds < 16 + 4 + 1
    assert seed_files(run.seed)["user-data"] == UD


def test_the_default_budget(fetch) -> None:
    run = fetch(ec2(), "http://127.0.0.1:9", env=NO_TEST_BUDGET)
    assert run.rc == 2
    assert 25 <= run.seconds < 25 + 4 + 1, run.stderr
    assert is_marker(run.seed)
    assert (run.seed / "failure").read_text().startswith("unreachable: no connection")


def test_the_marker_leaves_no_site_context_of_another_instance(fetch, tmp_path: Path) -> None:
    """The marker says this instance has no context yet: a ``hepix/`` left
    without a seed (no ``source``) must not be run as this one's site context."""
    seed = tmp_path / "seed"
    (seed / "hepix").mkdir(parents=True, mode=0o700)
    (seed / "hepix" / "prolog.sh").write_text("echo another instance's\n")
    with MetadataService("EC2", UD, fault=Fault("503")) as svc:
        run = fetch(ec2("0"), svc.url, env=NO_TEST_BUDGET)
    assert run.rc == 2, run.stderr
    assert is_marker(run.seed)


def test_an_earlier_seed_is_kept_not_replaced_by_the_marker(fetch, tmp_path: Path) -> None:
    seed = tmp_path / "seed"
    seed.mkdir(mode=0o700)
    (seed / "source").write_text("EC2\n")
    (seed / "user-data").write_bytes(b"old")
    run = fetch(ec2("0"), "http://127.0.0.1:9", env=NO_TEST_BUDGET)
    assert run.rc == 2
    assert (seed / "user-data").read_bytes() == b"old"
    assert not (seed / "failure").exists()
    assert "the seed already in" in run.stderr


def test_a_seed_after_the_marker_has_no_failure_left(fetch) -> None:
    run = fetch(ec2("0"), "http://127.0.0.1:9", env=NO_TEST_BUDGET)
    assert is_marker(run.seed)
    with MetadataService("EC2", UD) as svc:
        run = fetch(ec2("0"), svc.url, env=NO_TEST_BUDGET)
    assert run.rc == 0, run.stderr
    assert set(seed_files(run.seed)) == {"source", "user-data", "meta-data", "network-data"}
