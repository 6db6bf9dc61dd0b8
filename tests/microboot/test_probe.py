"""The probe for an EC2-compatible service with no local evidence (Vac):
one TCP connect, bounded by 1 s, only when no rule matched, skipped by
cernvm.source=none, to CERNVM_METADATA_URL's host:port (loopback here; the
real 169.254.169.254 only inside a network namespace of the test's own)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.fakes.metadata import MetadataService

from .conftest import FETCH, Machine

#: libvirt on a Vac factory: nothing names the cloud
VAC = Machine(dmi={"sys_vendor": "QEMU", "product_name": "Standard PC (i440FX + PIIX, 1996)"})
UD = b"[amiconfig]\nplugins = cernvm\n"


def test_vac_found_by_the_probe(fetch) -> None:
    with MetadataService("EC2", UD) as svc:
        run = fetch(VAC, svc.url)
        connections = svc.connections
    assert run.rc == 0, run.stderr
    assert (run.seed / "source").read_bytes() == b"EC2\n"
    assert (run.seed / "user-data").read_bytes() == UD
    meta = json.loads((run.seed / "meta-data").read_bytes())
    assert meta["instance-id"] == "i-0123456789abcdef0"
    assert "accepted a connection" in meta["cernvm-probe"]
    # the connect sent nothing; then EC2's own five requests (the fake speaks
    # HTTP/1.0: a connection each)
    assert [r.method for r in svc.requests] == ["PUT", *["GET"] * 9]
    assert connections == 1 + 10  # the probe, then the requests
    assert "(probe)" in run.stderr


def test_vac_without_token_is_imdsv1(fetch) -> None:
    with MetadataService("EC2", UD, imds_v1_only=True) as svc:
        run = fetch(VAC, svc.url)
    assert run.rc == 0, run.stderr
    assert len(svc.requests) == 10 and "IMDSv1" in run.stderr


def test_probed_service_refusing_the_token_otherwise_is_imdsv1(fetch) -> None:
    # a factory's own server that knows no PUT: 400, not AWS's 404/405
    answers = {"/latest/api/token": (400, b"Bad Request")}
    with MetadataService("EC2", UD, imds_v1_only=True, answers=answers) as svc:
        run = fetch(VAC, svc.url)
        ec2 = fetch(Machine(dmi={"sys_vendor": "Amazon EC2"}), svc.url)
    assert run.rc == 0, run.stderr
    assert (run.seed / "user-data").read_bytes() == UD
    assert ec2.rc == 2  # on EC2 itself a 400 is an error, as before


def test_no_service_costs_little(fetch) -> None:
    run = fetch(VAC)  # 127.0.0.1:9: refused at once
    assert run.rc == 1, run.stderr
    assert "probe: nothing answers on 127.0.0.1:9" in run.stderr
    assert not run.seed.exists()


def test_cernvm_source_none_skips_the_probe(fetch) -> None:
    with MetadataService("EC2", UD) as svc:
        run = fetch(Machine(cmdline="quiet cernvm.source=none"), svc.url)
        assert svc.connections == 0
    assert run.rc == 1, run.stderr
    assert "cernvm.source=none" in run.stderr


def test_detect_never_probes(fetch) -> None:
    with MetadataService("EC2", UD) as svc:
        run = fetch(VAC, svc.url, args=["--detect"])
        assert svc.connections == 0
    assert run.rc == 1 and run.stdout == ""


def test_local_evidence_means_no_probe(fetch) -> None:
    with MetadataService("EC2", UD) as svc:
        run = fetch(Machine(dmi={"sys_vendor": "Amazon EC2"}), svc.url)
        assert svc.connections == len(svc.requests) == 10  # no probe
    assert run.rc == 0
    assert "cernvm-probe" not in json.loads((run.seed / "meta-data").read_bytes())


def _netns_ok() -> bool:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    done = subprocess.run(["unshare", "-rn", "true"], capture_output=True, check=False)
    return done.returncode == 0


@pytest.mark.skipif(not _netns_ok(), reason="needs unshare -rn and ip (user namespaces)")
def test_unanswered_real_address_costs_at_most_a_second(bbpath: Path, tmp_path: Path) -> None:
    """The default address, 169.254.169.254, in a network namespace of the
    test's own where packets to it go nowhere (a veth pair, no peer): the
    probe gives up after its 1 s."""
    root, media = VAC.build(tmp_path)
    (tmp_path / "tmp").mkdir()
    ip = shutil.which("ip")
    script = (f"{ip} link set lo up && {ip} link add v0 type veth peer name v1 && "
              f"{ip} addr add 169.254.0.15/16 dev v0 && {ip} link set v0 up && "
              f"{ip} link set v1 up && exec {bbpath}/sh {FETCH} {tmp_path}/seed")
    env = {"PATH": str(bbpath), "CERNVM_SYSROOT": str(root),
           "CERNVM_MEDIA_DIR": str(media), "TMPDIR": str(tmp_path / "tmp")}
    done = subprocess.run(["unshare", "-rn", "sh", "-c", script], env=env, capture_output=True,
                          text=True, timeout=30, check=False)
    assert done.returncode == 1, done.stderr
    line = re.search(r"probe: nothing answers on 169\.254\.169\.254:80 \((\d+) ms\)", done.stderr)
    assert line, done.stderr
    assert 900 <= int(line.group(1)) <= 1300



def _tcp_connect(bbpath: Path, tmp_path: Path, url: str) -> subprocess.CompletedProcess:
    """tcp_connect of lib/probe.sh under busybox sh, with an nc that knows
    no -e (a shell function: this busybox's ash runs its own nc applet
    whatever PATH holds), so that the curl fallback runs."""
    lib = FETCH.parent / "lib"
    hostport = url.split("//", 1)[1].split(":")
    script = (f". {lib}/common.sh; . {lib}/probe.sh; WORK={tmp_path}; "
              "nc() { echo 'Usage: nc [-iN] [-wN] [-l] [-p PORT] [-f FILE|IPADDR PORT]' >&2;"
              " return 1; }; "
              f"tcp_connect {hostport[0]} {hostport[1]}")
    return subprocess.run([str(bbpath / "sh"), "-c", script], env={"PATH": str(bbpath)},
                          capture_output=True, text=True, timeout=10, check=False)


def test_nc_without_e_falls_back_to_curl(bbpath: Path, tmp_path: Path) -> None:
    with MetadataService("EC2", UD) as svc:
        found = _tcp_connect(bbpath, tmp_path, svc.url)
        assert [r.path for r in svc.requests] == ["/"]  # curl cannot stop at the connect
    assert found.returncode == 0, found.stderr
    start = time.monotonic()
    assert _tcp_connect(bbpath, tmp_path, "http://127.0.0.1:9").returncode == 1
    assert time.monotonic() - start < 1.5
