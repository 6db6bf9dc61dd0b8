"""The microboot stage ends within its budget whatever runs inside it: a
process that hangs (a curl past its own time limit, an awk that never ends)
is killed with its whole process group at the deadline, and on TERM; the
work directory goes, nothing is written, no process outlives the stage. And
processing is linear: a context.sh at make-iso's cap (1 MiB) takes about a
second under busybox."""

from __future__ import annotations

import base64
import os
import resource
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.fakes import ec2

from .conftest import FETCH, Machine, busybox_path, no_seed

EC2 = Machine(dmi=ec2.DMI)
# A curl that ignores its time limit and leaves an awk spinning beside it:
# both write their process ids, so that the test can look for survivors.
HANGING_CURL = """#!{sh}
echo $$ >>"{pids}"
awk 'BEGIN {{ while (1) n++ }}' &
echo $! >>"{pids}"
: >"{pids}.ready"
wait
"""


def alive(pid: int) -> bool:
    """True while PID runs (a zombie counts as ended)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return fields[0] != "Z"


def hanging_bin(top: Path, pids: Path) -> Path:
    """A PATH of busybox applets and the hanging curl."""
    bindir = top / "bin"
    bindir.mkdir()
    busybox = busybox_path(top / "bb") / "sh"
    curl = bindir / "curl"
    curl.write_text(HANGING_CURL.format(sh=busybox, pids=pids))
    curl.chmod(0o755)
    return busybox_path(bindir)


def start(top: Path, bindir: Path, machine: Machine, deadline: int,
          url: str = "http://127.0.0.1:9") -> subprocess.Popen:
    root, media = machine.build(top)
    (top / "tmp").mkdir(exist_ok=True)
    env = {"PATH": str(bindir), "CERNVM_SYSROOT": str(root), "CERNVM_MEDIA_DIR": str(media),
           "CERNVM_METADATA_URL": url, "TMPDIR": str(top / "tmp"),
           "CERNVM_DEADLINE_S": str(deadline)}
    return subprocess.Popen([str(bindir / "sh"), str(FETCH), str(top / "seed")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def survivors(pids: Path) -> list[int]:
    time.sleep(0.2)
    listed = [int(p) for p in pids.read_text().split()] if pids.exists() else []
    return [p for p in listed if alive(p)]


def kill_all(pids: Path) -> None:
    for pid in survivors(pids):
        os.kill(pid, signal.SIGKILL)


def test_a_hanging_process_is_killed_at_the_deadline(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    proc = start(tmp_path, hanging_bin(tmp_path, pids), EC2, deadline=3)
    begin = time.monotonic()
    try:
        _out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
        kill_all(pids)
    seconds = time.monotonic() - begin
    assert pids.exists()                  # the curl did run, and hang
    assert proc.returncode == 2, err
    assert 2.5 < seconds < 5
    assert survivors(pids) == []
    assert "deadline (3 s) passed; its work stopped; no seed" in err
    assert no_seed(tmp_path / "seed")
    # the marker says why (issue 17)
    failure = (tmp_path / "seed" / "failure").read_text()
    assert failure == "deadline: the stage's deadline (3 s) passed; its work stopped\n"
    assert list((tmp_path / "tmp").iterdir()) == []         # the work directory went


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_leaves_no_child_running(sig: signal.Signals, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    proc = start(tmp_path, hanging_bin(tmp_path, pids), EC2, deadline=20)
    try:
        for _ in range(200):
            if Path(f"{pids}.ready").exists():
                break
            time.sleep(0.05)
        proc.send_signal(sig)
        begin = time.monotonic()
        _out, err = proc.communicate(timeout=10)
        seconds = time.monotonic() - begin
    finally:
        proc.kill()
        kill_all(pids)
    assert proc.returncode == 2, err
    assert seconds < 2
    assert survivors(pids) == []
    assert "stopped by a signal; no seed" in err
    assert no_seed(tmp_path / "seed")
    assert list((tmp_path / "tmp").iterdir()) == []


def test_slow_processing_is_killed_at_the_deadline(tmp_path: Path) -> None:
    """A context.sh that keeps the awk busy past the budget: the awk goes
    with the stage (it outlived the stage when the stage was killed)."""
    ctx = b"USER_DATA='" + b"'\\''" * (6 * 1024 * 1024) + b"'\n"   # 24 MiB of quotes
    machine = Machine(media={"CONTEXT": {"context.sh": ctx}})
    proc = start(tmp_path, busybox_path(tmp_path / "bin"), machine, deadline=2)
    begin = time.monotonic()
    _out, err = proc.communicate(timeout=30)
    seconds = time.monotonic() - begin
    assert proc.returncode == 2, err
    assert seconds < 4
    assert "deadline (2 s) passed" in err
    assert no_seed(tmp_path / "seed")
    time.sleep(0.2)
    mine = [p for p in Path("/proc").iterdir() if p.name.isdigit()
            and str(tmp_path).encode() in _cmdline(p)]
    assert mine == []


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""


def make_context(size: int, quoting: str) -> bytes:
    """A context.sh whose EC2_USER_DATA (or USER_DATA) is about SIZE bytes."""
    raw = os.urandom(size * 3 // 4)
    if quoting == "double":              # the case: one line, double quotes
        return b'EC2_USER_DATA="' + base64.b64encode(raw) + b'"\nVMID=7\n'
    if quoting == "wrapped":             # base64 in 76-character lines, single quotes
        return b"EC2_USER_DATA='" + base64.encodebytes(raw) + b"'\nVMID=7\n"
    text = (b"#cloud-config\nwrite_files:\n- content: it's here\n" * (size // 44 + 1))[:size]
    return b"USER_DATA='" + text.replace(b"'", b"'\\''") + b"'\nVMID=7\n"


@pytest.mark.parametrize("quoting", ["double", "wrapped", "opennebula"])
def test_a_context_sh_at_the_cap_is_read_in_linear_time(quoting: str, bbpath: Path,
                                                       tmp_path: Path) -> None:
    ctx = make_context(1024 * 1024 - 64, quoting)
    machine = Machine(media={"CONTEXT": {"context.sh": ctx}})
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = start(tmp_path, bbpath, machine, deadline=30)
    begin = time.monotonic()
    _out, err = proc.communicate(timeout=60)
    seconds = time.monotonic() - begin
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    assert proc.returncode == 0, err
    # the processes' own time: a busy test machine stretches the wall clock
    assert cpu < 5 and seconds < 20, (cpu, seconds, err)
    ud = (tmp_path / "seed" / "user-data").read_bytes()
    assert len(ud) > 700_000
