"""The seed written all or nothing (seed_write in microboot/lib/common.sh),
under busybox: after any failure the seed directory holds the old complete
seed (or, when even the way back fails, no ``source``: no seed), never a mix
of old and new files, and no staging directory is left behind."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import FETCH, Machine, run_fetch

LIB = FETCH.parent / "lib" / "common.sh"
OLD = {"source": b"EC2\n", "user-data": b"old user-data\n", "meta-data": b'{"old": 1}\n',
       "ucontext": b"_UCONTEXT_OLD=1\n", "extra-user-data": b"not ours\n"}
NEW = {"user-data": b"new user-data\n", "ucontext": b"_UCONTEXT_NEW=1\n", "source": b"vSphere\n"}
VSPHERE = Machine(dmi={"sys_vendor": "VMware, Inc."},
                  media={"OVF": {"user-data.txt": NEW["user-data"]}})

# mv stand-ins (shell functions win over applets): fail the Nth mv outright,
# or after moving its first file (a list cut half-way), or every mv from N on
FAIL_NTH = 'mv() { _n=$((_n + 1)); [ "$_n" -eq "$FAIL" ] && return 1; command mv "$@"; }'
FAIL_HALF = ('mv() { _n=$((_n + 1)); if [ "$_n" -eq "$FAIL" ]; then eval "_d=\\${$#}"; '
             'command mv -f "$2" "$_d"; return 1; fi; command mv "$@"; }')
FAIL_FROM = 'mv() { _n=$((_n + 1)); [ "$_n" -ge "$FAIL" ] && return 1; command mv "$@"; }'


def write_old(seed: Path) -> None:
    seed.mkdir(mode=0o755)
    for name, data in OLD.items():
        (seed / name).write_bytes(data)


def contents(seed: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in seed.iterdir() if p.is_file()}


def leftovers(seed: Path) -> list[str]:
    return [p.name for p in seed.iterdir() if p.name.startswith(".")]


def seed_write(bbpath: Path, tmp_path: Path, mv_stub: str,
               fail: int) -> subprocess.CompletedProcess:
    """seed_write of NEW into tmp/seed, holding OLD, with MV_STUB failing."""
    work = tmp_path / "work"
    work.mkdir()
    for name, data in NEW.items():
        (work / name).write_bytes(data)
    script = f'set -f; umask 077; . "{LIB}"; WORK="{work}"; _n=0; FAIL={fail}; {mv_stub}\n' \
             f'seed_write "{tmp_path / "seed"}"'
    return subprocess.run([str(bbpath / "sh"), "-c", script], env={"PATH": str(bbpath)},
                          capture_output=True, text=True, timeout=20, check=False)


@pytest.mark.parametrize("stub", [FAIL_NTH, FAIL_HALF], ids=["outright", "half-way"])
@pytest.mark.parametrize("fail", [1, 2, 3], ids=["old-out", "new-in", "source-in"])
def test_a_failing_rename_puts_the_old_seed_back(stub: str, fail: int, bbpath: Path,
                                                tmp_path: Path) -> None:
    write_old(tmp_path / "seed")
    done = seed_write(bbpath, tmp_path, stub, fail)
    assert done.returncode == 1
    assert contents(tmp_path / "seed") == OLD
    assert leftovers(tmp_path / "seed") == []
    assert "the old one kept, nothing written" in done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr


@pytest.mark.parametrize("fail", [2, 3])
def test_when_even_the_way_back_fails_there_is_no_seed(fail: int, bbpath: Path,
                                                      tmp_path: Path) -> None:
    write_old(tmp_path / "seed")
    done = seed_write(bbpath, tmp_path, FAIL_FROM, fail)
    assert done.returncode == 1
    files = contents(tmp_path / "seed")
    assert "source" not in files          # no seed, rather than a mix
    assert files["extra-user-data"] == OLD["extra-user-data"]
    assert leftovers(tmp_path / "seed") == []
    assert "it is no seed now (no source)" in done.stderr


def test_the_new_seed_replaces_an_old_one_whole(bbpath: Path, tmp_path: Path) -> None:
    seed = tmp_path / "seed"
    write_old(seed)
    (seed / ".new.12345").mkdir()              # left by a run that was stopped
    (seed / ".new.12345" / "user-data").write_bytes(b"half\n")
    (seed / "azure.iso").write_bytes(b"iso")
    run = run_fetch(bbpath, tmp_path, VSPHERE)
    assert run.rc == 0, run.stderr
    files = contents(seed)
    assert files["source"] == b"vSphere\n" and files["user-data"] == NEW["user-data"]
    assert "meta-data" not in files and "ucontext" not in files     # this run has none
    assert files["extra-user-data"] == OLD["extra-user-data"] and files["azure.iso"] == b"iso"
    assert leftovers(seed) == []
    assert seed.stat().st_mode & 0o777 == 0o700
    assert all((seed / n).stat().st_mode & 0o777 == 0o600 for n in ("source", "user-data"))


def test_a_directory_in_the_way_writes_nothing(bbpath: Path, tmp_path: Path) -> None:
    seed = tmp_path / "seed"
    write_old(seed)
    (seed / "meta-data").unlink()
    (seed / "meta-data").mkdir()
    (seed / "meta-data" / "x").write_bytes(b"x")
    before = contents(seed)
    run = run_fetch(bbpath, tmp_path, VSPHERE)
    assert run.rc == 2
    assert contents(seed) == before and (seed / "meta-data" / "x").exists()
    assert leftovers(seed) == []
    assert "is a directory; nothing written" in run.stderr


def test_a_seed_path_that_is_a_file_writes_nothing(bbpath: Path, tmp_path: Path) -> None:
    (tmp_path / "seed").write_bytes(b"a file\n")
    run = run_fetch(bbpath, tmp_path, VSPHERE)
    assert run.rc == 2
    assert (tmp_path / "seed").read_bytes() == b"a file\n"
    assert "cannot write the seed into" in run.stderr
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("seed")] == ["seed"]


def test_a_read_only_seed_directory_writes_nothing(bbpath: Path, tmp_path: Path) -> None:
    if shutil.which("unshare") is None or subprocess.run(
            ["unshare", "-m", "true"], capture_output=True, check=False).returncode:
        pytest.skip("needs a mount namespace (root)")
    seed = tmp_path / "seed"
    write_old(seed)
    root, media = VSPHERE.build(tmp_path)
    (tmp_path / "tmp").mkdir()
    env = {"PATH": str(bbpath), "CERNVM_SYSROOT": str(root), "CERNVM_MEDIA_DIR": str(media),
           "TMPDIR": str(tmp_path / "tmp")}
    script = (f'mount --bind "{seed}" "{seed}" && mount -o remount,bind,ro "{seed}" && '
              f'exec "{bbpath}/sh" "{FETCH}" "{seed}"')
    done = subprocess.run(["unshare", "-m", "--propagation", "private", "/bin/sh", "-c",
                           script], env=env, capture_output=True, text=True, timeout=30,
                          check=False)
    assert done.returncode == 2, done.stderr
    assert contents(seed) == OLD
    assert leftovers(seed) == []
    assert "cannot write the seed into" in done.stderr and "nothing written" in done.stderr
