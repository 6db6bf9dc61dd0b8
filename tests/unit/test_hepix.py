"""The HEPiX site context runner (``hepix.py``) without cloud-init."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from cloudinit_cernvm import hepix
from cloudinit_cernvm.context_image import context, formats, make_iso


def seed_with(tmp_path: Path, **files: bytes) -> Path:
    seed = tmp_path / "seed"
    site = seed / "hepix"
    site.mkdir(parents=True)
    seed.chmod(0o700)
    site.chmod(0o700)
    for name, data in files.items():
        (site / name).write_bytes(data)
        (site / name).chmod(0o600)
    return seed


def test_settings():
    assert (hepix.settings_from({})[0].context_dir, hepix.settings_from({})[0].timeout) == (
        "/var/lib/hepix/context", 600.0)
    settings, problems = hepix.settings_from({"hepix_context_dir": "/", "hepix_timeout": True})
    assert settings.context_dir == hepix.DEFAULT_CONTEXT_DIR and settings.timeout == 600.0
    assert len(problems) == 2
    settings, problems = hepix.settings_from({"hepix_context_dir": "/srv/ctx/",
                                              "hepix_timeout": "5"})
    assert (settings.context_dir, settings.timeout, problems) == ("/srv/ctx", 5.0, [])


def test_site_files(tmp_path):
    assert hepix.site_files(str(tmp_path)) is None  # no hepix/
    seed = seed_with(tmp_path, **{"context.sh": b"A=1\n"})
    assert hepix.site_files(str(seed)) is None  # no script: no site context
    (seed / "hepix" / "epilog.sh").write_bytes(b"echo\n")
    assert hepix.site_files(str(seed)) == {"context.sh": b"A=1\n", "epilog.sh": b"echo\n"}


@pytest.mark.parametrize("spoil", ["group-writable", "link", "bad-name", "dir-is-link", "big"])
def test_site_files_refused(tmp_path, spoil):
    seed = seed_with(tmp_path, **{"prolog.sh": b"true\n"})
    site = seed / "hepix"
    if spoil == "group-writable":
        (site / "prolog.sh").chmod(0o620)
    elif spoil == "link":
        (site / "key.pem").symlink_to("/etc/hostname")
    elif spoil == "bad-name":
        (site / ".hidden").write_bytes(b"x")
    elif spoil == "dir-is-link":
        site.rename(tmp_path / "elsewhere")
        site.symlink_to(tmp_path / "elsewhere")
    else:
        with open(site / "big.bin", "wb") as f:
            f.truncate(hepix.MAX_TOTAL + 1)
    with pytest.raises(hepix.HepixError):
        hepix.site_files(str(seed))


def test_environment_context_variables_over_cloud_inits():
    variables = hepix.context_variables(
        {"context.sh": b"VMID='7'\nPATH=/site/bin\nEC2_USER_DATA='W2Ftb]'\nexport X\n"})
    env = hepix.environment({"PATH": "/usr/bin", "HOME": "/root"}, variables, "/ctx")
    assert env == {"PATH": "/site/bin", "HOME": "/root", "VMID": "7",
                   "EC2_USER_DATA": "W2Ftb]", "CONTEXT_DIR": "/ctx"}
    assert "N" not in hepix.context_variables({"context.sh": b"N='a\0b'\n"})


def test_launcher_quotes_its_paths():
    text = hepix.launcher_text("/var/lib/cloud/instances/i 1/cernvm", "/usr/bin/python3")
    assert text.startswith("#!/bin/sh\n")
    assert ("exec /usr/bin/python3 -m cloudinit_cernvm.hepix epilog"
            " '/var/lib/cloud/instances/i 1/cernvm'\n") in text


def test_begin_and_epilog_once(tmp_path):
    prolog = b'echo "prolog $1 $(pwd) $VMID" >> "$EVENTS"; ls >> "$EVENTS"\n'
    epilog = b'echo "epilog $1" >> "$EVENTS"; exit 4\n'
    seed = seed_with(tmp_path, **{"prolog.sh": prolog, "epilog.sh": epilog,
                                  "context.sh": b"VMID='one-1'\n", "site.conf": b"s\n"})
    cernvm, scripts, ctx = tmp_path / "i" / "cernvm", tmp_path / "i" / "scripts", tmp_path / "ctx"
    events = tmp_path / "events"
    env = {"PATH": os.environ["PATH"], "EVENTS": str(events)}
    cfg = {"hepix_context_dir": str(ctx), "hepix_timeout": 20}
    record = hepix.begin(str(cernvm), str(seed), str(scripts), cfg, env)
    assert record["prolog"]["exit_status"] == 0
    assert events.read_text().split("\n")[:3] == [f"prolog start {ctx} one-1", "context.sh",
                                                   "site.conf"]
    assert oct((ctx.stat().st_mode) & 0o777) == "0o700"
    launcher = scripts / hepix.LAUNCHER_NAME
    assert os.access(launcher, os.X_OK) and str(cernvm) in launcher.read_text()
    # a later consume of the same instance: nothing
    assert hepix.begin(str(cernvm), str(seed), str(scripts), cfg, env) is None
    out = io.StringIO()
    assert hepix.epilog(str(cernvm), env, out) == 0
    assert "WARNING: HEPiX epilog.sh exited with status 4" in out.getvalue()
    again = io.StringIO()
    assert hepix.epilog(str(cernvm), env, again) == 0
    assert "ran already" in again.getvalue()
    assert events.read_text().count("epilog start") == 1
    saved = json.loads((cernvm / "hepix.json").read_text())
    assert saved["epilog"]["exit_status"] == 4 and saved["files"] == [
        "context.sh", "epilog.sh", "prolog.sh", "site.conf"]
    assert hepix.main(["epilog", "relative"]) == 2


def test_make_iso_site_files(tmp_path):
    good = tmp_path / "grid-ca.pem"
    good.write_bytes(b"CA")
    assert make_iso.read_site_files([str(good)]) == {"grid-ca.pem": b"CA"}
    for name in (".hidden", "we ird", "prolog.sh"):
        bad = tmp_path / name
        bad.write_bytes(b"x")
        with pytest.raises(context.ContextMediaError):
            make_iso.read_site_files([str(bad)])
    with pytest.raises(context.ContextMediaError):
        make_iso.read_site_files([str(good), str(good)])
    ctx = context.Context(instance_id="i", files={"grid-ca.pem": b"CA"})
    with pytest.raises(context.ContextMediaError, match="hepix only"):
        formats.build_tree("opennebula", ctx)
    tree = formats.build_tree("hepix", ctx)
    assert tree["grid-ca.pem"] == b"CA" and b"FILES='grid-ca.pem'" in tree["context.sh"]
