"""The benchmark's model of the chain CernVM images run today behaves as the
real agents do (``bench/cernvm_today``): µCernVM's search asks in its order
and waits out its time-outs; ``amiconfig.sh user`` makes its own requests;
the stand-in amiconfig fetches what the real one fetches.

The µCernVM search runs under busybox in a network namespace of its own
where 192.0.2.0/24 is routed to nowhere (its packets are dropped, as an
address nothing serves on a cloud network), with the fake service on the
namespace's loopback and small time-outs injected.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fakes.metadata import MetadataService
from tests.microboot.conftest import busybox_path
from tests.vm.providers import USER_DATA

TOP = Path(__file__).resolve().parents[2]
TODAY = TOP / "bench" / "cernvm_today"
SILENT_NET = "192.0.2.0/24"
PORT = 8099


@pytest.fixture(scope="module")
def bb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return busybox_path(tmp_path_factory.mktemp("bb"))


def search(tmp: Path, bb: Path, *, provider: str | None, server: str, router: str,
           dhcp: str | None = None, probe: int = 1, connect: int = 1,
           fake_args: tuple[str, ...] = ()) -> tuple[subprocess.CompletedProcess, float,
                                                     list[str], Path]:
    """Today's µCernVM search in a private network namespace; returns the
    run, its seconds, the fake's requests ("GET /path status") and the seed."""
    (tmp / "partitions").write_text("major minor  #blocks  name\n\n")
    (tmp / "ud").write_bytes(USER_DATA)
    if dhcp:
        (tmp / "dhcp-server").write_text(dhcp + "\n")
    env = {"PATH": str(bb), "CT_PARTITIONS": str(tmp / "partitions"), "CT_SERVER": server,
           "CT_ROUTER": router, "CT_PORT": str(PORT), "CT_PROBE_TIMEOUT": str(probe),
           "CT_CONNECT_TIMEOUT": str(connect), "CT_WORK": str(tmp),
           "CT_DHCP_FILE": str(tmp / "dhcp-server")}
    fake = ""
    if provider:
        fake = (f"{sys.executable} -m tests.fakes.metadata --provider {provider} "
                f"--user-data {tmp / 'ud'} --port {PORT} --lifetime 60 "
                f"{' '.join(fake_args)} > {tmp / 'fake.log'} 2>&1 & fake=$!; "
                # until it listens
                f"i=0; while ! nc -w 1 127.0.0.1 {PORT} -e true 2>/dev/null && "
                f"[ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; ")
    script = (f"ip link set lo up && ip route add {SILENT_NET} dev lo && {fake}"
              f"start=$(/bin/date +%s%N); busybox sh {TODAY / 'initramfs' / 'fetch-context'} "
              f"{tmp / 'seed'} 2> {tmp / 'stderr'}; rc=$?; "
              f"echo $(( ($(/bin/date +%s%N) - start) / 1000000 )) > {tmp / 'ms'}; "
              + ("kill $fake; wait $fake; " if provider else "") + "exit $rc")
    started = time.monotonic()
    proc = subprocess.run(["unshare", "--net", "sh", "-c", script], cwd=TOP, capture_output=True,
                          text=True, timeout=120,
                          env={**env, "PATH": f"{bb}:{os.environ['PATH']}",
                               "PYTHONPATH": str(TOP)})
    seconds = time.monotonic() - started
    proc.stderr = (tmp / "stderr").read_text() if (tmp / "stderr").exists() else proc.stderr
    log = (tmp / "fake.log").read_text().splitlines() if provider else []
    requests = [line for line in log if line.startswith(("GET ", "PUT "))]
    return proc, seconds, requests, tmp / "seed"


def test_today_asks_gce_and_ec2_first_on_openstack(tmp_path: Path, bb: Path) -> None:
    proc, _, requests, seed = search(tmp_path, bb, provider="OpenStack", server="127.0.0.1",
                                     router="192.0.2.1", fake_args=("--complete",))
    assert proc.returncode == 0, proc.stderr
    assert [r.rsplit(" ", 1)[0] for r in requests] == [
        "GET /computeMetadata/v1/instance/attributes/user-data",
        "GET /computeMetadata/v1/instance/id",
        "GET /2016-04-19/user-data",
        "GET /2016-04-19/meta-data/ami-id",
        "GET /openstack/2013-10-17/user_data",
    ]
    assert [r.rsplit(" ", 1)[1] for r in requests] == ["404"] * 4 + ["200"]
    assert (seed / "source").read_text() == "OpenStack\n"
    assert (seed / "user-data").read_bytes() == USER_DATA
    assert (seed / "ucontext").read_text() == (
        "_UCONTEXT_RESIZE_ROOTFS=0\n_UCONTEXT_CVMFS_HTTP_PROXY=http://squid.example.org:3128\n")
    # µCernVM sets no umask: default modes
    assert (seed / "user-data").stat().st_mode & 0o777 == 0o644
    # 10.1.1.1's stand-in never answered the probe: one time-out
    assert proc.stderr.count("ct: timeout ") == 1
    assert "ct: timeout probe 192.0.2.1" in proc.stderr


def test_today_waits_out_the_probe_when_nothing_answers(tmp_path: Path, bb: Path) -> None:
    proc, _, _, seed = search(tmp_path, bb, provider=None, server="192.0.2.1",
                              router="192.0.2.2", dhcp="192.0.2.3", probe=2)
    assert proc.returncode == 1
    assert proc.stderr.count("ct: timeout probe ") == 3
    assert "ct: request" not in proc.stderr
    assert "ct: source (none)" in proc.stderr
    # the whole probe's time, in parallel: 2 s, not 6
    assert 1900 <= int((tmp_path / "ms").read_text()) < 4500
    assert not (seed / "source").exists() and (seed / "ucontext").read_bytes() == b""


def test_today_waits_out_each_connect_time_out(tmp_path: Path, bb: Path) -> None:
    # CloudStack's router not at 10.1.1.1: the probe finds the DHCP server;
    # µCernVM still asks 10.1.1.1 first, user-data then meta-data, each to
    # its connect time-out (1 s here, 16 s on a cloud)
    proc, _, requests, seed = search(tmp_path, bb, provider="CloudStack", server="192.0.2.1",
                                     router="192.0.2.2", dhcp="127.0.0.1", probe=1, connect=1)
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("ct: request")]
    assert lines == [
        f"ct: request http://192.0.2.2:{PORT}/latest/user-data curl-exit 28",
        f"ct: request http://192.0.2.2:{PORT}/latest/meta-data/instance-id curl-exit 28",
        f"ct: request http://127.0.0.1:{PORT}/latest/user-data curl-exit 0",
    ]
    assert requests == ["GET /latest/user-data 200"]
    assert proc.stderr.count("ct: timeout ") == 4  # two probes, two connects
    assert 3000 <= int((tmp_path / "ms").read_text()) < 6000
    assert (seed / "source").read_text() == "CloudStack\n"


def amiconfig_sh(tmp: Path, svc: MetadataService, **env: str) -> tuple[
        subprocess.CompletedProcess, Path]:
    """The model of ``amiconfig.sh user`` against SVC, with the stand-in amiconfig."""
    wrapper = tmp / "amiconfig"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} {TOP / 'tests/fakes/amiconfig'} "
                       f"-c {TOP / 'tests/fakes/amiconfig-default.cfg'}\n")
    wrapper.chmod(0o755)
    proc = subprocess.run(
        ["bash", str(TODAY / "amiconfig.sh"), "user"], capture_output=True, text=True,
        timeout=60, env={"PATH": os.environ["PATH"], "AMI_SERVER": "127.0.0.1",
                         "AMI_PORT": svc.url.rsplit(":", 1)[1], "AMI_STATE": str(tmp / "state"),
                         "AMI_LEASES": str(tmp / "leases"), "AMICONFIG": str(wrapper),
                         "FAKE_AMICONFIG_RECORD": str(tmp / "record"), **env})
    return proc, tmp / "record" / "run-1"


def test_amiconfig_sh_fetches_again_and_amiconfig_reads_its_keys(tmp_path: Path) -> None:
    with MetadataService("EC2", USER_DATA, imds_optional=True, complete=True) as svc:
        proc, run = amiconfig_sh(tmp_path, svc)
    assert proc.returncode == 0, proc.stderr
    assert [(r.path, r.status, r.headers["user-agent"].split("/")[0]) for r in svc.requests] == [
        ("/2007-12-15//user-data", 200, "Wget"),
        ("/2007-12-15//meta-data/public-keys/0/openssh-key", 200, "AMIConfig"),
    ]
    assert {"amiconfig", "cernvm"} <= set(json.loads((run / "sections.json").read_text()))
    assert (tmp_path / "state" / "user.done").exists()
    assert (tmp_path / "state" / "2007-12-15" / "user-data").stat().st_mode & 0o777 == 0o600


def test_amiconfig_sh_gets_nothing_from_an_imdsv2_only_ec2(tmp_path: Path) -> None:
    with MetadataService("EC2", USER_DATA, complete=True) as svc:
        proc, run = amiconfig_sh(tmp_path, svc)
    assert proc.returncode == 1
    assert "Can't retrieve any user data: aborting!" in proc.stderr
    # EC2's user-data, then GCE's cvm-user-data: both refused without a token
    assert [(r.path, r.status) for r in svc.requests] == [
        ("/2007-12-15//user-data", 401),
        ("/computeMetadata/v1/instance/attributes/cvm-user-data", 401)]
    assert not run.exists() and not (tmp_path / "state" / "user.done").exists()


def test_stand_in_amiconfig_fetches_user_data_and_keys_without_a_local_copy(
        tmp_path: Path) -> None:
    with MetadataService("CloudStack", USER_DATA) as svc:
        env = {"PATH": os.environ["PATH"], "FAKE_AMICONFIG_RECORD": str(tmp_path / "rec"),
               "AMICONFIG_CONTEXT_URL": f"{svc.url}/latest"}
        proc = subprocess.run([sys.executable, str(TOP / "tests/fakes/amiconfig"), "-c",
                               str(TOP / "tests/fakes/amiconfig-default.cfg")],
                              capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    assert [(r.path, r.headers["user-agent"]) for r in svc.requests] == [
        ("/latest/user-data", "AMIConfig/0.6 elliot@rpath.com"),
        ("/latest/meta-data/public-keys/0/openssh-key", "AMIConfig/0.6 elliot@rpath.com")]
    run = tmp_path / "rec" / "run-1"
    assert (run / "payload").read_bytes() == USER_DATA
    # CloudStack lists its keys in one file: the key's path is a 404, whose
    # page Python 2's urllib hands back as the key
    assert json.loads((run / "metadata.json").read_text()) == {
        "user-data": USER_DATA.decode(), "meta-data/public-keys/0/openssh-key": "Not Found"}
    assert [u[1:] for u in json.loads((run / "requests.json").read_text())] == [
        [200, len(USER_DATA)], [404, 9]]
