"""Bad input: one line on stderr, exit 1, and no image (not even half of one)."""

from __future__ import annotations

import base64
import json
import struct
import sys

import pytest
from iso_helpers import USER_DATA, make_iso, make_iso_process, public_key

from cloudinit_cernvm.context_image import context, iso9660

PRIVATE_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)


def mismatched_key():
    blob = struct.pack(">I", 7) + b"ssh-rsa" + b"\x00" * 40
    return "ssh-ed25519 " + base64.b64encode(blob).decode() + " liar\n"


@pytest.fixture
def work(tmp_path):
    (tmp_path / "ud").write_bytes(USER_DATA)
    (tmp_path / "key.pub").write_text(public_key() + "\n")
    return tmp_path


def fails(work, capsys, *argv, out_name="out.iso"):
    """Run make-iso expecting a one-line error; return it. Checks nothing was left."""
    before = sorted(p.name for p in work.iterdir())
    out = work / out_name
    rc = make_iso(*argv, "-o", out)
    err = capsys.readouterr().err
    assert rc == 1
    assert err.count("\n") == 1 and err.startswith("cernvm-context make-iso: "), err
    assert "Traceback" not in err
    assert sorted(p.name for p in work.iterdir()) == before  # no image, no temp file
    return err


def test_missing_user_data(work, capsys):
    err = fails(work, capsys, "--format", "opennebula", "--user-data", work / "nope")
    assert "--user-data" in err and "No such file" in err


@pytest.mark.parametrize(
    ("fmt", "limit"),
    [("configdrive", 65536), ("cloudstack", 32768), ("opennebula", 1 << 20), ("hepix", 1 << 20)],
)
def test_over_the_format_limit(work, capsys, fmt, limit):
    (work / "big").write_bytes(b"#" * (limit + 1))
    err = fails(work, capsys, "--format", fmt, "--user-data", work / "big")
    assert f"{limit + 1} bytes" in err and f"at most {limit}" in err


def test_at_the_limit_is_fine(work, capsys):
    (work / "max").write_bytes(b"#" * 32768)
    assert (
        make_iso("--format", "cloudstack", "--user-data", work / "max", "-o", work / "cs.iso") == 0
    )


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (PRIVATE_KEY, "private key"),
        ("hello world\n", "not an OpenSSH public key"),
        ("ssh-ed25519 !!!notbase64!!!\n", "bad base64"),
        (mismatched_key(), "does not match"),
        ("\n# only a comment\n", "holds no OpenSSH public key"),
        (
            "---- BEGIN SSH2 PUBLIC KEY ----\nAAAA\n---- END SSH2 PUBLIC KEY ----\n",
            "not an OpenSSH public key",
        ),
    ],
)
def test_bad_ssh_key(work, capsys, content, words):
    (work / "bad.key").write_text(content)
    err = fails(
        work,
        capsys,
        "--format",
        "configdrive",
        "--user-data",
        work / "ud",
        "--ssh-key",
        work / "bad.key",
    )
    assert words in err
    assert "PRIVATE" not in err and "b3Blbn" not in err  # the secret is not echoed


def test_binary_key_file(work, capsys):
    (work / "bin.key").write_bytes(b"\xff\xfe\x00garbage")
    assert "not an OpenSSH" in fails(
        work, capsys, "--format", "hepix", "--ssh-key", work / "bin.key"
    )


def test_existing_output_is_kept(work, capsys):
    (work / "out.iso").write_bytes(b"precious")
    err = fails(work, capsys, "--format", "opennebula", "--user-data", work / "ud")
    assert "exists; use --force" in err
    assert (work / "out.iso").read_bytes() == b"precious"


@pytest.mark.parametrize(
    ("meta", "words"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        (json.dumps({"BAD-NAME": "x"}), "not a shell variable name"),
        (json.dumps({"USER_DATA": "x"}), "set from --user-data"),
        (json.dumps({"LIST": [1]}), "string, number or boolean"),
        (json.dumps({"NUL": "a\u0000b"}), "NUL"),
    ],
)
def test_bad_meta_data_for_context_sh(work, capsys, meta, words):
    (work / "meta.json").write_text(meta)
    assert words in fails(
        work,
        capsys,
        "--format",
        "opennebula",
        "--user-data",
        work / "ud",
        "--meta-data",
        work / "meta.json",
    )


@pytest.mark.parametrize("name", ["$(touch x)", "-lead.example", "a..b", "x" * 64])
def test_bad_hostname(work, capsys, name):
    assert "not a host name" in fails(work, capsys, "--format", "configdrive", f"--hostname={name}")


def test_bad_instance_id(work, capsys):
    assert "instance id" in fails(work, capsys, "--format", "cloudstack", "--instance-id", "a\nb")


def test_prolog_needs_hepix(work, capsys):
    (work / "p.sh").write_text("#!/bin/sh\n")
    assert "hepix only" in fails(work, capsys, "--format", "opennebula", "--prolog", work / "p.sh")


def test_unwritable_directory(work, capsys):
    err = fails(work, capsys, "--format", "opennebula", out_name="no/such/dir/x.iso")
    assert "cannot write" in err


def test_failure_while_writing_leaves_nothing(work, capsys, monkeypatch):
    """A failure after the temporary file exists (here: the ISO writer) removes it."""

    def broken(tree, label, fp):
        fp.write(b"half an image")
        raise context.ContextMediaError("writer failed")

    monkeypatch.setattr(iso9660, "write_iso", broken)
    assert "writer failed" in fails(work, capsys, "--format", "opennebula")


def test_exit_status_and_one_line_from_a_process(work):
    proc = make_iso_process(
        "--format", "cloudstack", "--user-data", work / "nope", "-o", work / "x.iso"
    )
    assert proc.returncode == 1
    assert proc.stderr.decode().count("\n") == 1
    assert not (work / "x.iso").exists()


def test_two_inputs_from_stdin(work, capsys):
    err = fails(work, capsys, "--format", "hepix", "--user-data", "-", "--prolog", "-")
    assert "only one input can be stdin" in err


def test_without_pycdlib(work, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "pycdlib", None)  # import pycdlib now fails
    err = fails(work, capsys, "--format", "opennebula", "--user-data", work / "ud")
    assert "make-iso needs pycdlib" in err
