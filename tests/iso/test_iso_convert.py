"""--convert stores the user-data as ``cloudinit_cernvm.userdata.normalize`` gives it.

``userdata.normalize`` is its own module; until it is in the tree these tests
put a small stand-in honouring its contract (old syntax to MIME multipart,
``UserDataError`` a ``ValueError``) in its place, in the test process only.
With the real module present, the real one runs.
"""

from __future__ import annotations

import email
import importlib
import sys
import types
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import pytest
from iso_helpers import USER_DATA, extract, make_iso, read_tree


def _stand_in() -> types.ModuleType:
    module = types.ModuleType("cloudinit_cernvm.userdata")

    class UserDataError(ValueError):
        pass

    def normalize(raw: bytes) -> bytes:
        script, _, rest = raw.partition(b"exit\n")
        outer = MIMEMultipart()
        outer.attach(MIMEText((script + b"exit\n").decode(), "x-shellscript"))
        outer.attach(MIMEText(rest.decode(), "amiconfig"))
        return outer.as_bytes()

    module.UserDataError = UserDataError
    module.normalize = normalize
    return module


@pytest.fixture
def userdata(monkeypatch):
    try:
        return importlib.import_module("cloudinit_cernvm.userdata")
    except ImportError:
        module = _stand_in()
        monkeypatch.setitem(sys.modules, "cloudinit_cernvm.userdata", module)
        import cloudinit_cernvm

        monkeypatch.setattr(cloudinit_cernvm, "userdata", module, raising=False)
        return module


def test_convert_stores_mime(tmp_path, userdata):
    (tmp_path / "ud").write_bytes(USER_DATA)
    out = tmp_path / "c.iso"
    assert (
        make_iso("--format", "configdrive", "--user-data", tmp_path / "ud", "--convert", "-o", out)
        == 0
    )
    stored = read_tree(extract(out, tmp_path / "x"))["openstack/latest/user_data"]
    assert stored != USER_DATA
    message = email.message_from_bytes(stored)
    assert message.is_multipart()
    text = b"".join(
        part.get_payload(decode=True) or b"" for part in message.walk() if not part.is_multipart()
    )
    assert b"echo 'context ran' > /tmp/ctx" in text
    assert b"organisations = atlas" in text


def test_without_convert_stores_raw(tmp_path, userdata):
    (tmp_path / "ud").write_bytes(USER_DATA)
    out = tmp_path / "r.iso"
    assert make_iso("--format", "configdrive", "--user-data", tmp_path / "ud", "-o", out) == 0
    assert read_tree(extract(out, tmp_path / "x"))["openstack/latest/user_data"] == USER_DATA


def test_convert_error_is_one_line(tmp_path, userdata, capsys, monkeypatch):
    """A user-data the converter refuses: its message, one line, no image."""

    from cloudinit_cernvm.userdata_part import UserDataError

    def refuse(raw: bytes) -> bytes:
        raise UserDataError("MIME multipart without any part boundary")

    monkeypatch.setattr(userdata, "normalize", refuse)
    (tmp_path / "ud").write_bytes(b"Content-Type: multipart/mixed\n\nno parts\n")
    rc = make_iso(
        "--format",
        "opennebula",
        "--user-data",
        tmp_path / "ud",
        "--convert",
        "-o",
        tmp_path / "e.iso",
    )
    err = capsys.readouterr().err
    assert rc == 1
    assert err == ("cernvm-context make-iso: --convert: MIME multipart without any part boundary\n")
    assert not (tmp_path / "e.iso").exists()


def test_limit_applies_to_the_converted_data(tmp_path, userdata, capsys):
    # old syntax: conversion wraps script and section in MIME parts, adding headers
    raw = b"#!/bin/sh\nexit\n[cernvm]\nusers = " + b"a" * 32700 + b"\n"
    assert len(raw) <= 32768
    (tmp_path / "ud").write_bytes(raw)
    rc = make_iso(
        "--format",
        "cloudstack",
        "--user-data",
        tmp_path / "ud",
        "--convert",
        "-o",
        tmp_path / "big.iso",
    )
    assert rc == 1
    assert "the cloudstack format takes at most 32768 bytes" in capsys.readouterr().err
    assert not (tmp_path / "big.iso").exists()


def test_convert_needs_user_data(tmp_path, capsys):
    assert make_iso("--format", "hepix", "--convert", "-o", tmp_path / "n.iso") == 1
    assert "--convert needs --user-data" in capsys.readouterr().err
