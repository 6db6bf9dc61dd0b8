"""The HEPiX site context of a context CD kept in the seed's ``hepix/``.

vmcontext_prolog copied the whole CD and ran ``prolog.sh`` from the copy;
the stage keeps the scripts and the files they need (``lib/hepix.sh``) so
that cloud-init runs them without a second search. The CD is the one
``cernvm-context make-iso --format hepix --prolog --epilog --file`` writes,
read back with its Rock Ridge names.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cloudinit_cernvm import cli
from tests.iso.iso_helpers import extract
from tests.microboot.conftest import Machine, seed_files

PROLOG = b'#!/bin/bash\n. "$CONTEXT_DIR/site.conf"\ntar xzf ./site.tgz\n'
EPILOG = b"#!/bin/bash\necho epilog $1\n"
USER_DATA = b"[amiconfig]\nplugins = cernvm\n"


def make_cd(tmp_path: Path, *extra: str, prolog: bytes = PROLOG,
            epilog: bytes | None = EPILOG) -> Path:
    """make-iso's hepix CD, extracted as the stage's disk labelled CONTEXT."""
    inputs = tmp_path / "in"
    inputs.mkdir(exist_ok=True)
    (inputs / "ud").write_bytes(USER_DATA)
    (inputs / "prolog.sh").write_bytes(prolog)
    argv = ["make-iso", "--format", "hepix", "--user-data", str(inputs / "ud"),
            "--prolog", str(inputs / "prolog.sh"), "--instance-id", "one-4711"]
    if epilog is not None:
        (inputs / "epilog.sh").write_bytes(epilog)
        argv += ["--epilog", str(inputs / "epilog.sh")]
    image = tmp_path / "ctx.iso"
    assert cli.main([*argv, *extra, "-o", str(image)]) == 0
    media = tmp_path / "media"
    extract(image, media / "CONTEXT")
    return media


def site(seed: Path) -> dict[str, bytes]:
    """The seed's hepix/ files; asserts 0700 and 0600."""
    hepix = seed / "hepix"
    assert stat.S_IMODE(hepix.stat().st_mode) == 0o700
    out = {}
    for path in sorted(hepix.iterdir()):
        assert stat.S_IMODE(path.lstat().st_mode) == 0o600, path
        assert path.is_file() and not path.is_symlink()
        out[path.name] = path.read_bytes()
    return out


def fetch_media(fetch, media: Path, **files: bytes):
    """fetch on MEDIA (its CONTEXT disk) with FILES added to the disk."""
    for name, data in files.items():
        (media / "CONTEXT" / name).write_bytes(data)
    machine = Machine()
    return fetch(machine, env={"CERNVM_MEDIA_DIR": str(media)})


def test_scripts_and_the_files_they_name(fetch, tmp_path):
    inputs = tmp_path / "files"
    inputs.mkdir()
    (inputs / "grid-ca.pem").write_bytes(b"CA\n")
    media = make_cd(tmp_path, "--file", str(inputs / "grid-ca.pem"))
    run = fetch_media(fetch, media, **{"site.tgz": b"TGZ", "site.conf": b"X=1\n",
                                       "unrelated.iso": b"BIG" * 1000, "sit": b"no"})
    assert run.rc == 0, run.stderr
    files = site(run.seed)
    cd = media / "CONTEXT"
    assert files == {
        "prolog.sh": PROLOG, "epilog.sh": EPILOG,
        "context.sh": (cd / "context.sh").read_bytes(),
        "grid-ca.pem": b"CA\n",              # context.sh's FILES
        "site.tgz": b"TGZ", "site.conf": b"X=1\n",   # words of prolog.sh
    }
    assert b"FILES='grid-ca.pem'" in files["context.sh"]
    assert "HEPiX site context: 6 files" in run.stderr
    # the rest of the seed as before; hepix/ beside it
    rest = {p.name for p in run.seed.iterdir()}
    assert rest == {"source", "user-data", "meta-data", "hepix"}
    assert (run.seed / "user-data").read_bytes() == USER_DATA


def test_no_scripts_no_site_context(fetch, tmp_path):
    media = make_cd(tmp_path, prolog=b"", epilog=None)
    os.unlink(media / "CONTEXT" / "prolog.sh")
    run = fetch_media(fetch, media)
    assert run.rc == 0, run.stderr
    assert not (run.seed / "hepix").exists()
    seed_files(run.seed)


def test_names_from_the_cd_are_untrusted(fetch, tmp_path):
    secret = tmp_path / "host-secret"
    secret.write_bytes(b"root's key\n")
    prolog = (b"#!/bin/bash\ncat ../../host-secret link.pem .hidden 'we ird' sub\n"
              b"ROOT_PUBKEY names a path\n")
    media = make_cd(tmp_path, prolog=prolog, epilog=None)
    cd = media / "CONTEXT"
    (cd / "link.pem").symlink_to(secret)
    (cd / ".hidden").write_bytes(b"h")
    (cd / "we ird").write_bytes(b"w")
    (cd / "sub").mkdir()
    ctx = (cd / "context.sh").read_bytes()
    (cd / "context.sh").write_bytes(
        ctx + b"FILES='/srv/one/../../host-secret link.pem'\nUSER_PUBKEY='../host-secret'\n")
    run = fetch_media(fetch, media)
    assert run.rc == 0, run.stderr
    assert set(site(run.seed)) == {"prolog.sh", "context.sh"}
    assert "reached through a symlink" in run.stderr
    assert "name not kept" in run.stderr
    for path in run.seed.rglob("*"):
        assert b"root's key" not in (path.read_bytes() if path.is_file() else b"")


def test_bounded_in_size(fetch, tmp_path):
    media = make_cd(tmp_path, prolog=b"#!/bin/sh\nuse big.bin small.bin\n", epilog=None)
    run = fetch_media(fetch, media, **{"big.bin": b"\0" * (16 * 1024 * 1024),
                                       "small.bin": b"s"})
    assert run.rc == 0, run.stderr
    assert set(site(run.seed)) == {"prolog.sh", "context.sh", "small.bin"}
    assert "big.bin not kept: the site context's files would be over 16777216 bytes" in run.stderr


def test_a_new_seed_without_site_context_drops_the_old(fetch, tmp_path):
    media = make_cd(tmp_path)
    run = fetch_media(fetch, media)
    assert (run.seed / "hepix" / "prolog.sh").exists()
    os.unlink(media / "CONTEXT" / "prolog.sh")
    os.unlink(media / "CONTEXT" / "epilog.sh")
    again = fetch_media(fetch, media)
    assert again.rc == 0, again.stderr
    assert not (again.seed / "hepix").exists()
    assert not [p for p in again.seed.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("blocker", ["file", "dir-in-the-way"])
def test_seed_write_failure_keeps_the_old_seed(fetch, tmp_path, blocker):
    media = make_cd(tmp_path)
    first = fetch_media(fetch, media)
    assert first.rc == 0
    before = site(first.seed)
    # the next write cannot place user-data: the old seed, hepix/ too, stays
    (first.seed / "user-data").unlink()
    (first.seed / "user-data").mkdir()
    again = fetch_media(fetch, media)
    assert again.rc == 2
    assert site(again.seed) == before
