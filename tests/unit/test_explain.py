"""``cernvm-context explain``: each consumer's reading, side by side."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cloudinit_cernvm import cli, explain

REPO = Path(__file__).resolve().parents[2]
REAL = REPO / "tests" / "data" / "real"
FORMATS = REPO / "cloudinit_cernvm" / "microboot" / "lib"
CORPUS = sorted(p for p in REAL.iterdir() if p.name != "SOURCES")


def sourced(lines: str, tmp_path: Path) -> dict[str, str]:
    """The _UCONTEXT_ variables that sourcing ``lines`` with sh gives."""
    script = tmp_path / "ucontext.sh"
    script.write_text(lines)
    canary = tmp_path / "ran"
    done = subprocess.run(
        ["sh", "-c", 'set -a; . "$1" >/dev/null 2>&1; set +a; env', "_", str(script)],
        capture_output=True, text=True, timeout=30, check=True, cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "CANARY": str(canary)},
    )
    assert not canary.exists(), "sourcing ran a command"
    found = {}
    for line in done.stdout.splitlines():
        if line.startswith("_UCONTEXT_"):
            key, _, value = line.partition("=")
            found[key] = value
    return found


def stage_ucontext(user_data: bytes, tmp_path: Path) -> str:
    """What the microboot stage's ucontext function writes for ``user_data``."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "user-data").write_bytes(user_data)
    busybox = shutil.which("busybox")
    assert busybox, "busybox is needed (tools/bootstrap installs it)"
    subprocess.run(
        [busybox, "sh", "-c",
         f'WORK={work}; . {FORMATS}/common.sh; . {FORMATS}/formats.sh; '
         f'ucontext {work}/user-data {work}/ucontext'],
        check=True, timeout=30, capture_output=True,
    )
    return (work / "ucontext").read_text()


def user_data_of(path: Path) -> bytes:
    return cli.read_user_data(str(path))


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_ucontext_lines_are_what_the_microboot_stage_writes(path, tmp_path):
    raw = user_data_of(path)
    settings, _ = explain.ucontext_lines(explain.stage_texts(raw), hide=False)
    lines = "".join(s["ucontext"] + "\n" for s in settings)
    stage = stage_ucontext(raw, tmp_path)
    # the same variables once sourced, whatever the quoting
    assert sourced(lines, tmp_path) == sourced(stage, tmp_path)
    # and the very same line wherever neither quotes the value
    written = {line.partition("=")[0]: line for line in stage.splitlines()}
    for line in lines.splitlines():
        theirs = written[line.partition("=")[0]]
        if not set("'\"") & set(line + theirs):
            assert line == theirs


HOSTILE = (
    "[ucernvm-begin]\n"
    "cvmfs_tag=$(touch $CANARY)\n"
    "cvmfs_branch=`touch $CANARY`\n"
    "cvmfs_server=a b; touch $CANARY\n"
    "cernvm_path=it's\n"
    'cvmfs_http_proxy="http://a:3128;http://b:3128;DIRECT"\n'
    "cvmfs_cdn='##user_data_option_cdn##'\n"
    "resize_rootfs=Yes\n"
    "[ucernvm-end]\n"
)


def test_ucontext_values_source_to_themselves_and_run_nothing(tmp_path):
    report = explain.explain(HOSTILE.encode())
    lines = "".join(line + "\n" for line in report["ucernvm"]["ucontext"])
    assert sourced(lines, tmp_path) == {
        "_UCONTEXT_CVMFS_TAG": "$(touch $CANARY)",
        "_UCONTEXT_CVMFS_BRANCH": "`touch $CANARY`",
        "_UCONTEXT_CVMFS_SERVER": "a b; touch $CANARY",
        "_UCONTEXT_CERNVM_PATH": "it's",
        # wholly inside one pair of quotes: without them, as µCernVM's sourcing gave it
        "_UCONTEXT_CVMFS_HTTP_PROXY": "http://a:3128;http://b:3128;DIRECT",
        "_UCONTEXT_CVMFS_CDN": "##user_data_option_cdn##",
        "_UCONTEXT_RESIZE_ROOTFS": "1",
    }


def test_secret_ucernvm_values_are_not_shown():
    report = explain.explain(
        b"[ucernvm-begin]\ncvm_cluster_pin=1234\n"
        b"cvmfs_http_proxy=http://user:pw5678@squid:3128\n[ucernvm-end]\n"
    )
    assert report["ucernvm"]["ucontext"] == [
        "_UCONTEXT_CVM_CLUSTER_PIN=...",
        "_UCONTEXT_CVMFS_HTTP_PROXY=http://(hidden)@squid:3128",
    ]
    assert "1234" not in json.dumps(report) and "pw5678" not in json.dumps(report)
    assert [s["where"] for s in report["ucernvm"]["settings"]] == ["line 2", "line 3"]


def test_settings_in_mime_name_their_part_and_skipped_lines_are_listed():
    data = (
        b'Content-Type: multipart/mixed; boundary="b"\nMIME-Version: 1.0\n\n'
        b"--b\nContent-Type: application/octet-stream\n\n\x00\x01\n"
        b"--b\nContent-Type: text/ucernvm\n\n[ucernvm-begin]\ncvmfs_tag=t\n"
        b"cvmfs tag=u\n[ucernvm-end]\n--b--\n"
    )
    report = explain.explain(data)
    ((setting),) = report["ucernvm"]["settings"]
    assert setting["where"] == "part 2, line 2"
    assert "part 2, line 3: the microboot stage skips this µCernVM line" in "".join(
        report["unread"]
    )


def test_amiconfig_is_shown_as_its_parser_reads_the_joined_parts():
    data = (
        b'Content-Type: multipart/mixed; boundary="b"\nMIME-Version: 1.0\n\n'
        b"--b\nContent-Type: text/amiconfig\n\n[amiconfig]\nplugins = cernvm\n[cernvm]\n"
        b"Shell = /bin/sh\n  indented = dropped\n"
        b"--b\nContent-Type: text/amiconfig-user-data\n\nshell = /bin/bash ; comment\n"
        b"[condor]\nlowport: 41000\n[rpath]\nrap-password = s3cret\n--b--\n"
    )
    report = explain.explain(data)
    ami = report["amiconfig"]
    assert ami["parts"] == 2 and ami["plugins"] == ["cernvm"]
    sections = {s["name"]: s for s in ami["sections"]}
    assert list(sections) == ["amiconfig", "cernvm", "condor", "rpath"]
    # the second part's first line joins [cernvm] of the first; the later value wins
    assert sections["cernvm"]["options"] == [
        {
            "name": "shell",
            "value": "/bin/bash",
            "where": "part 2 (text/amiconfig-user-data), line 1",
        }
    ]
    assert sections["condor"]["options"][0]["value"] == "41000"
    assert "not enabled here" in sections["condor"]["read_by"]
    assert sections["rpath"]["options"][0]["value"] == "(set)"
    assert "s3cret" not in json.dumps(report)
    assert any("indented" in item for item in report["unread"])


def test_amiconfig_that_fails_on_its_section_is_said_so():
    report = explain.explain(b"[AMICONFIG]\nplugins = cernvm\n")
    assert report["amiconfig"]["plugins"] is None
    assert "fails before any plugin runs" in report["amiconfig"]["fails"]


def test_each_script_says_when_it_runs():
    text = (
        b"#!/bin/sh.before\necho early\nexit\n[amiconfig]\nplugins = cernvm\n"
        b"#cloud-config\nruncmd: [ls]\npackages: [htop]\n"
    )
    report = explain.explain(text)
    (script,) = report["scripts"]
    assert script["runs"].startswith("before amiconfig")
    assert report["cloud_config"] == [{"where": "line 6", "keys": ["runcmd", "packages"]}]
    after = explain.explain(b"#! /bin/bash\necho late\n[cernvm]\nshell = /bin/sh\n")["scripts"][0]
    assert after["runs"].startswith("after amiconfig")
    assert after["also_runs"].startswith("lines 3-4: no 'exit' before them")


def test_users_passwords_are_not_shown():
    report = explain.explain(b"[cernvm]\nusers = a:g:$6$salt$hash,b:g:plain\n")
    (option,) = report["amiconfig"]["sections"][0]["options"]
    assert option["value"] == "a:g:(password set),b:g:(password set)"


def test_the_verb_prints_each_consumer(tmp_path):
    path = REAL / "vcycle-gce-cvm-user-data-2017"
    done = subprocess.run([sys.executable, "-m", "cloudinit_cernvm", "explain", str(path)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for heading in ("µCernVM", "amiconfig", "scripts:", "cloud-config", "read by no consumer:"):
        assert heading in out
    assert "_UCONTEXT_CVMFS_HTTP_PROXY=DIRECT" in out
    as_json = subprocess.run(
        [sys.executable, "-m", "cloudinit_cernvm", "explain", "--json", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert json.loads(as_json.stdout)["format"] == "old-syntax"


def test_unreadable_data_is_one_line_and_exit_1():
    bad = b'Content-Type: multipart/mixed; boundary="x"\nMIME-Version: 1.0\n\n--y\n\nz\n--y--\n'
    done = subprocess.run([sys.executable, "-m", "cloudinit_cernvm", "explain"], input=bad,
                          capture_output=True, timeout=60, check=False)
    assert done.returncode == 1
    assert len(done.stderr.splitlines()) == 1 and b"malformed MIME" in done.stderr
