"""``cernvm-context`` through its real entry point (``python -m cloudinit_cernvm``)."""

from __future__ import annotations

import base64
import email
import gzip
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cloudinit_cernvm import cli

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"


def run(*args: str, stdin: bytes = b"", env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "-m", "cloudinit_cernvm", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


def types_of(mime: bytes) -> list[str]:
    msg = email.message_from_bytes(mime)
    return [p.get_content_type() for p in msg.walk() if not p.is_multipart()]


def assert_one_line_error(done, status: int) -> str:
    assert done.returncode == status
    err = done.stderr.decode()
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("cernvm-context: ")
    return err


def test_convert_file_and_stdin_give_the_same_parts():
    from_file = run("convert", str(SAMPLES / "legacy-mixed.txt"))
    from_stdin = run("convert", stdin=(SAMPLES / "legacy-mixed.txt").read_bytes())
    from_dash = run("convert", "-", stdin=(SAMPLES / "legacy-mixed.txt").read_bytes())
    want = ["text/x-shellscript", "text/ucernvm", "text/amiconfig", "text/cloud-config"]
    for done in (from_file, from_stdin, from_dash):
        assert done.returncode == 0, done.stderr
        assert types_of(done.stdout) == want


def test_convert_gzip_base64_for_cloud_apis():
    done = run("convert", "--gzip", "--base64", str(SAMPLES / "legacy-ec2-cms.txt"))
    assert done.returncode == 0
    mime = gzip.decompress(base64.b64decode(done.stdout))
    assert types_of(mime) == ["text/x-shellscript", "text/amiconfig"]


def test_convert_warns_for_each_provider_limit_exceeded():
    big = ("[cernvm]\n" + "".join(f"key{i} = {'x' * 60}\n" for i in range(300))).encode()
    done = run("convert", stdin=big)  # about 21 KiB: over EC2's 16 KiB only
    assert done.returncode == 0
    err = done.stderr.decode()
    assert "exceed EC2's user-data limit of 16 KiB; try --gzip" in err
    assert "OpenStack" not in err and "CloudStack" not in err
    huge = ("[cernvm]\n" + "".join(f"key{i} = {'x' * 60}\n" for i in range(1200))).encode()
    err = run("convert", "--base64", stdin=huge).stderr.decode()
    for name in ("EC2", "OpenStack", "Azure", "CloudStack"):
        assert f"exceed {name}'s user-data limit" in err
    err = run("convert", "--provider", "openstack", stdin=big).stderr.decode()
    assert "limit" not in err


def test_convert_malformed_mime_is_one_line_error():
    err = assert_one_line_error(run("convert", str(SAMPLES / "mime-as-printed.txt")), 1)
    assert "boundary" in err


def test_convert_missing_file_is_one_line_error():
    err = assert_one_line_error(run("convert", "/nonexistent/user-data"), 2)
    assert "cannot read /nonexistent/user-data" in err


def test_convert_context_sh_reads_its_user_data():
    done = run("convert", str(SAMPLES / "hepix-context.sh"))
    assert done.returncode == 0
    assert types_of(done.stdout) == ["text/amiconfig"]
    assert b"[cernvm]\norganisations = atlas\n" in done.stdout
    assert b"EC2_USER_DATA" in done.stderr


def test_convert_passes_cloud_init_format_unchanged():
    done = run("convert", stdin=b"#cloud-config\npackages: [htop]\n")
    assert done.stdout == b"#cloud-config\npackages: [htop]\n"
    assert b"unchanged" in done.stderr


@pytest.mark.parametrize(
    "name", ["legacy-mixed.txt", "legacy-ec2-cms.txt", "legacy-atlas-panda.txt", "hepix-context.sh"]
)
def test_validate_clean_samples(name):
    done = run("validate", str(SAMPLES / name))
    assert done.returncode == 0, done.stdout
    assert done.stdout.decode().startswith("ok: ")


def test_validate_slide_mime_lists_problems():
    done = run("validate", str(SAMPLES / "mime-as-printed.txt"))
    assert done.returncode == 1
    lines = done.stdout.decode().splitlines()
    assert lines[0].startswith("MIME: malformed MIME: the header declares boundary")
    assert all(": " in line for line in lines)


def test_validate_suggests_the_intended_key_from_stdin():
    done = run("validate", stdin=b"[ucernvm-begin]\ncvmfs_proxy=DIRECT\n[ucernvm-end]\n")
    assert done.returncode == 0  # a warning: probably a typo, but it breaks nothing
    assert done.stdout.decode() == (
        "warning: line 2: unknown µCernVM key 'cvmfs_proxy': it only becomes the variable "
        "_UCONTEXT_CVMFS_PROXY (did you mean 'cvmfs_http_proxy'?) [ucernvm-unknown-key]\n"
        "ok (1 warning): old syntax, 1 part: text/ucernvm\n"
    )


@pytest.mark.parametrize("verb", ["convert", "validate", "explain", "detect", "show"])
def test_every_verb_has_help_with_an_example(verb):
    done = run(verb, "--help")
    assert done.returncode == 0
    assert "example:" in done.stdout.decode()


def test_version_and_usage_errors():
    from cloudinit_cernvm import __version__

    done = run("--version")
    assert done.returncode == 0 and done.stdout.decode() == f"cernvm-context {__version__}\n"
    done = run("frobnicate")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr.decode()


def test_other_verbs_do_not_import_the_image_builder():
    code = (
        "import sys; from cloudinit_cernvm import cli; cli.build_parser('convert');"
        "cli.build_parser(None); assert 'pycdlib' not in sys.modules, 'pycdlib imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr


def test_make_iso_dispatches_to_the_image_builder():
    done = run("make-iso", "--help")
    if importlib.util.find_spec("cloudinit_cernvm.context_media") is None:
        err = assert_one_line_error(done, 2)
        assert "make-iso is not available" in err
    else:
        assert done.returncode == 0
        assert "example:" in done.stdout.decode()


def test_detect_reports_provider_or_says_none(tmp_path):
    env = {"CERNVM_SYSROOT": str(tmp_path), "CERNVM_MEDIA_DIR": str(tmp_path / "media")}
    (tmp_path / "media").mkdir()
    done = run("detect", env=env)
    if importlib.util.find_spec("cloudinit_cernvm.detect") is None:
        assert "provider detection is not available" in assert_one_line_error(done, 1)
        return
    # an empty system root shows no provider
    assert done.returncode == 1
    assert "no provider recognised" in done.stderr.decode()
    dmi = tmp_path / "sys" / "class" / "dmi" / "id"
    dmi.mkdir(parents=True)
    (dmi / "product_name").write_text("Google Compute Engine\n")
    (dmi / "sys_vendor").write_text("Google\n")
    done = run("detect", "--sysroot", str(tmp_path), env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().splitlines()[0] == "GCE"


def test_detect_json_is_one_object_found_or_not(tmp_path):
    if importlib.util.find_spec("cloudinit_cernvm.detect") is None:
        pytest.fail("cloudinit_cernvm.detect is part of the package")
    media = tmp_path / "media"
    media.mkdir()
    env = {"CERNVM_SYSROOT": str(tmp_path), "CERNVM_MEDIA_DIR": str(media)}
    # nothing recognised: the object still, with its error; exit 1, stderr quiet
    done = run("detect", "--json", env=env)
    assert done.returncode == 1 and done.stderr == b""
    assert json.loads(done.stdout) == {
        "sysroot": str(tmp_path), "media_dir": str(media), "provider": None,
        "evidence": [], "error": "no provider recognised from local evidence",
    }
    dmi = tmp_path / "sys" / "class" / "dmi" / "id"
    dmi.mkdir(parents=True)
    (dmi / "product_name").write_text("Google Compute Engine\n")
    (dmi / "sys_vendor").write_text("Google\n")
    done = run("detect", "--json", "--sysroot", str(tmp_path), env=env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    human = run("detect", "--sysroot", str(tmp_path), env=env).stdout.decode().splitlines()
    assert report["provider"] == "GCE" == human[0]
    assert report["evidence"] == [line.strip() for line in human[1:]] != []
    assert "error" not in report
    # the conventions of show --json: two-space indent, sorted keys, one newline
    text = done.stdout.decode()
    assert text == json.dumps(report, indent=2, sort_keys=True) + "\n"


def test_show_names_without_values(tmp_path):
    seed = tmp_path / "context"
    seed.mkdir(mode=0o700)
    (seed / "source").write_text("EC2\n")
    (seed / "user-data").write_bytes((SAMPLES / "legacy-mixed.txt").read_bytes())
    (seed / "meta-data").write_text(
        json.dumps({"instance-id": "i-0abc", "public-keys": ["ssh-rsa K"]})
    )
    (seed / "ucontext").write_text("_UCONTEXT_CVMFS_BRANCH=cernvm-prod.cern.ch\n")
    for path in seed.iterdir():
        path.chmod(0o600)
    records = tmp_path / "cloud" / "instance" / "cernvm"
    records.mkdir(parents=True)
    (records / "amiconfig.json").write_text(
        json.dumps(
            {"command": "/usr/sbin/amiconfig", "exit_status": 0, "payload": "password = secret"}
        )
    )
    args = ("show", "--seed-dir", str(seed), "--cloud-dir", str(tmp_path / "cloud"))
    human, as_json = run(*args), run(*args, "--json")
    if importlib.util.find_spec("cloudinit_cernvm.seed") is None:
        assert "reading the seed is not available" in assert_one_line_error(human, 1)
        return
    assert human.returncode == 0, human.stderr
    out = human.stdout.decode()
    assert "EC2" in out and "i-0abc" in out
    assert "text/ucernvm" in out and "[noip] username, password, hostname" in out
    assert "exit_status: 0" in out
    report = json.loads(as_json.stdout)
    assert [p["type"] for p in report["user_data"]["parts"]] == [
        "text/x-shellscript",
        "text/ucernvm",
        "text/amiconfig",
        "text/cloud-config",
    ]
    for text in (out, as_json.stdout.decode()):
        assert "secret" not in text and "vmuser" not in text and "cernvm-prod" not in text


def test_show_part_descriptions_and_records_keep_no_values():
    from cloudinit_cernvm import old_syntax

    parts = old_syntax.split_old_syntax((SAMPLES / "legacy-mixed.txt").read_text())
    described = [cli.describe_part(p) for p in parts]
    assert described[0]["interpreter"] == "/bin/sh"
    assert described[1]["keys"] == ["cvmfs_branch", "resize_rootfs"]
    assert described[2]["sections"] == [
        {"section": "amiconfig", "keys": ["plugins"]},
        {"section": "noip", "keys": ["username", "password", "hostname"]},
    ]
    assert described[3]["keys"] == ["resolv_conf"]
    assert "secret" not in json.dumps(described)
    redacted = cli._redact(
        {
            "command": "/usr/sbin/amiconfig",
            "exit_status": 1,
            "warnings": ["plugin noip failed"],
            "settings": {"_UCONTEXT_CVMFS_HTTP_PROXY": "http://user:pw@proxy"},
            "payload": "password = secret",
        }
    )
    assert redacted == {
        "command": "/usr/sbin/amiconfig",
        "exit_status": 1,
        "warnings": ["plugin noip failed"],
        "settings": {"keys": ["_UCONTEXT_CVMFS_HTTP_PROXY"]},
        "payload": "(set)",
    }
