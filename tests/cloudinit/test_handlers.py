"""The part-handlers under real cloud-init, on every supported release.

amiconfig is the stand-in ``tests/fakes/amiconfig`` (it honours the
contract in DESIGN.md and records each run under ``/var/log/fake-amiconfig``,
which the sandbox keeps). Boots are few and each checks much: a boot costs
seconds per release.
"""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

from cloudinit_cernvm import userdata as ud
from tests.cloudinit.helpers import assert_clean_boot
from tests.harness import sandbox

FAKE = Path(__file__).resolve().parents[1] / "fakes" / "amiconfig"
DONE = "/var/lib/cloud/amiconfig-state/user.done"
META = {
    "instance-id": "i-0a1b2c3d4e5f60718",
    "local-hostname": "cvm-worker-17",
    "public-keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKey user@host"],
}
INJECT = "H4sIAAAAAAAAA+3OMQ6CQBCG0a2p4hFmd2HZ2nNYU0hiYyWWNtvEVTi5="
UCONTEXT = (
    "_UCONTEXT_CVMFS_BRANCH=cernvm-testing.cern.ch\n"
    "_UCONTEXT_RESIZE_ROOTFS=1\n"
    "_UCONTEXT_CERNVM_INJECT=c2VlZC1zaWRlLXNlY3JldA==\n"
)
EVENTS = "/var/log/fake-amiconfig/events"


def mime(*parts: tuple[str, str]) -> str:
    """MIME multipart user-data from ``(content type, body)`` pairs."""
    out = 'Content-Type: multipart/mixed; boundary="BOUNDARY"\nMIME-Version: 1.0\n\n'
    for ctype, body in parts:
        out += f"--BOUNDARY\nContent-Type: {ctype}\n\n{body}"
    return out + "--BOUNDARY--\n"


def config(command: str, timeout: float = 60) -> dict:
    return {"datasource": {"CernVM": {
        "amiconfig_command": command,
        "amiconfig_timeout": timeout,
        "amiconfig_done_file": DONE,
    }}}


def record_dir(machine: sandbox.Machine) -> Path:
    return machine.dir / "var-log" / "fake-amiconfig"


def runs(machine: sandbox.Machine) -> int:
    count = record_dir(machine) / "count"
    return int(count.read_text()) if count.exists() else 0


def events(machine: sandbox.Machine) -> list[str]:
    path = machine.host_path(EVENTS)
    return path.read_text().split() if path.exists() else []


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def warnings(machine: sandbox.Machine) -> list[str]:
    return [ln for ln in machine.log.splitlines() if "[WARNING]" in ln]


def env_of(path: Path) -> dict[str, str]:
    return dict(ln.split("=", 1) for ln in path.read_text().splitlines() if "=" in ln)


def test_amiconfig_parts_scripts_and_ucernvm(machine_factory):
    machine = machine_factory(extra_config=config(str(FAKE)))
    record_dir(machine).mkdir(parents=True)
    user_data = mime(
        (ud.SCRIPT_BEFORE,
         f"#!/bin/sh\necho before >> {EVENTS}\nenv > /var/log/before-env\n"),
        (ud.AMICONFIG,
         "[amiconfig]\nplugins = cernvm condor\n[cernvm]\nusers = alice:alice:pw\n"),
        (ud.UCERNVM,
         "[ucernvm-begin]\ncvmfs_branch=cernvm-prod.cern.ch\nresize_rootfs=on\n"
         f"cvmfs_proxy=http://squid:3128\ncernvm_inject={INJECT}\n[ucernvm-end]\n"),
        ("text/cloud-config",
         "#cloud-config\nruncmd:\n"
         f" - [sh, -c, 'echo runcmd >> {EVENTS}; env > /var/log/runcmd-env']\n"),
        (ud.AMICONFIG,
         "## template: jinja\n[condor]\nhost = {{ v1.local_hostname }}\n"
         "instance = {{ instance_id }}\ncloud = {{ cloud_name }}\nprovider = {{ provider }}\n"),
        (ud.AMICONFIG, "## template: jinja\n[squid]\nbroken = {{ no_such_name }}\n"),
        (ud.SCRIPT, f"#!/bin/sh\necho after >> {EVENTS}\nenv > /var/log/after-env\n"),
    )
    machine.write_seed("EC2", user_data, META, ucontext=UCONTEXT)
    assert_clean_boot(machine, machine.boot())
    log = machine.log
    assert "Unhandled" not in log

    # amiconfig ran once, after the sh.before script, before everything else
    assert runs(machine) == 1
    assert events(machine)[:2] == ["before", "amiconfig"]
    assert sorted(events(machine)[2:]) == ["after", "runcmd"]
    run = record_dir(machine) / "run-1"
    assert json.loads((run / "argv.json").read_text()) == [str(FAKE)]

    # the payload: every amiconfig part in order, the template rendered, the
    # broken template kept as written
    cernvm = machine.instance_dir / "cernvm"
    payload = (run / "payload").read_text()
    assert payload == (
        "[amiconfig]\nplugins = cernvm condor\n[cernvm]\nusers = alice:alice:pw\n"
        "[condor]\nhost = cvm-worker-17\ninstance = i-0a1b2c3d4e5f60718\n"
        "cloud = aws\nprovider = EC2\n"
        "## template: jinja\n[squid]\nbroken = {{ no_such_name }}\n"
    )
    assert (cernvm / "amiconfig-user-data").read_text() == payload
    assert json.loads((run / "modes.json").read_text()) == {"file": "0o600", "dir": "0o700"}
    assert json.loads((run / "sections.json").read_text())["condor"]["host"] == "cvm-worker-17"
    assert sum("template not rendered" in w and "no_such_name" in w for w in warnings(machine)) == 1

    # the environment: the two variables for amiconfig (and its before
    # script) only, never in cloud-init's own processes
    env = json.loads((run / "env.json").read_text())
    inner_cernvm = f"/var/lib/cloud/instances/{META['instance-id']}/cernvm"
    assert env["AMICONFIG_LOCAL_USER_DATA"] == f"{inner_cernvm}/amiconfig-user-data"
    assert env["AMICONFIG_CONTEXT_URL"] == f"file:{inner_cernvm}/amiconfig-metadata/2007-12-15"
    assert env_of(machine.dir / "var-log" / "before-env")["AMICONFIG_LOCAL_USER_DATA"]
    for name in ("after-env", "runcmd-env"):
        assert not [k for k in env_of(machine.dir / "var-log" / name) if k.startswith("AMICONFIG")]
    # the local metadata tree answered what plugins ask; no network
    meta = json.loads((run / "metadata.json").read_text())
    assert meta["meta-data/instance-id"] == META["instance-id"]
    assert meta["meta-data/local-hostname"] == META["local-hostname"]
    assert meta["meta-data/public-keys/0/openssh-key"] == META["public-keys"][0] + "\n"
    assert meta["user-data"] == payload

    # what the handler recorded
    assert mode(cernvm) == 0o700
    record = json.loads((cernvm / "amiconfig.json").read_text())
    assert record["exit_status"] == 0 and record["parts"] == 3
    assert record["command"] == [str(FAKE)] and record["done_marker"] == DONE
    assert [s["exit_status"] for s in record["before_scripts"]] == [0]
    assert machine.host_path(DONE).exists()
    assert "CernVM: amiconfig: amiconfig: plugin condor configured" in log

    # µCernVM: recorded, compared with the seed, unknown key named, no secret logged
    for name in ("ucernvm.json", "ucernvm.env", "amiconfig.json", "amiconfig-user-data"):
        assert mode(cernvm / name) == 0o600, name
    ucernvm = json.loads((cernvm / "ucernvm.json").read_text())
    assert ucernvm["settings"]["_UCONTEXT_CVMFS_BRANCH"] == "cernvm-prod.cern.ch"
    assert ucernvm["settings"]["_UCONTEXT_RESIZE_ROOTFS"] == "1"
    assert ucernvm["secret_keys"] == ["_UCONTEXT_CERNVM_INJECT"]
    assert {d["key"] for d in ucernvm["differences"]} == {
        "_UCONTEXT_CVMFS_BRANCH", "_UCONTEXT_CVMFS_PROXY", "_UCONTEXT_CERNVM_INJECT"}
    assert f"_UCONTEXT_CERNVM_INJECT={INJECT}\n" in (cernvm / "ucernvm.env").read_text()
    ucernvm_warnings = [w for w in warnings(machine) if "text/ucernvm" in w]
    assert any("'cvmfs_proxy'" in w and "cvmfs_http_proxy" in w for w in ucernvm_warnings)
    assert any("'cernvm-prod.cern.ch'" in w and "'cernvm-testing.cern.ch'" in w
               for w in ucernvm_warnings)
    assert INJECT not in log and "c2VlZC1zaWRlLXNlY3JldA" not in log

    # a second boot of the same instance runs nothing of it again (the
    # user-data is consumed in the first two stages)
    assert_clean_boot(machine, machine.boot(sandbox.BOOT_STAGES[:2]))
    assert runs(machine) == 1
    assert events(machine).count("before") == 1


def test_faults_warn_once_and_the_rest_still_runs(machine_factory):
    """Non-zero exit, then a missing amiconfig, then a hang past the limit."""
    link = "/var/lib/cloud/fake-bin/amiconfig"
    machine = machine_factory(extra_config=config(link, timeout=2))
    host_link = machine.host_path(link)
    host_link.parent.mkdir(parents=True)
    host_link.symlink_to(FAKE)
    record_dir(machine).mkdir(parents=True)
    behaviour = record_dir(machine) / "behaviour"
    old_syntax = (
        f"#!/bin/sh.before\necho before >> {EVENTS}\nexit\n"
        "[amiconfig]\nplugins = cernvm\n[cernvm]\norganisations = cms\n"
        f"#cloud-config\nruncmd:\n - [sh, -c, 'echo runcmd >> {EVENTS}']\n"
    )

    def boot(iid: str) -> tuple[Path, list[str]]:
        before = len(warnings(machine))
        machine.write_seed("OpenStack", old_syntax, {"instance-id": iid})
        machine.host_path(DONE).unlink(missing_ok=True)
        assert_clean_boot(machine, machine.boot())
        assert "Unhandled" not in machine.log
        return machine.instance_dir / "cernvm", warnings(machine)[before:]

    # 1: amiconfig fails: one warning naming the status; marked done as
    # amiconfig.sh does after any finished run
    behaviour.write_text("exit 3\n")
    cernvm, new = boot("i-fault-exit")
    assert [w for w in new if "amiconfig" in w] == [
        next(w for w in new if "amiconfig exited with status 3" in w)]
    assert json.loads((cernvm / "amiconfig.json").read_text())["exit_status"] == 3
    assert machine.host_path(DONE).exists()
    assert events(machine) == ["before", "amiconfig", "runcmd"]

    # 2: amiconfig missing: one warning, payload kept, not marked done
    host_link.unlink()
    cernvm, new = boot("i-fault-missing")
    assert len([w for w in new if "amiconfig" in w]) == 1
    assert f"amiconfig not run: {link}" in new[0] and "kept in" in new[0]
    assert "[cernvm]\norganisations = cms\n" in (cernvm / "amiconfig-user-data").read_text()
    assert not machine.host_path(DONE).exists()
    assert events(machine)[3:] == ["before", "runcmd"]

    # 3: amiconfig hangs: killed with its child at the limit, the boot goes on
    host_link.symlink_to(FAKE)
    behaviour.write_text("hang\n")
    started = time.monotonic()
    cernvm, new = boot("i-fault-hang")
    assert time.monotonic() - started < 60
    assert len([w for w in new if "amiconfig" in w]) == 1
    assert "ran past its limit of 2 s and was killed" in new[0]
    record = json.loads((cernvm / "amiconfig.json").read_text())
    assert record["timed_out"] and record["done_marker"] is None
    assert not machine.host_path(DONE).exists()
    assert events(machine)[5:] == ["before", "amiconfig", "runcmd"]
    for pid in json.loads((record_dir(machine) / "run-2" / "pids.json").read_text()):
        assert not _alive(pid), f"process {pid} of the hung amiconfig survived"
    assert runs(machine) == 2


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie or a reused pid running sleep counts)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return False
    if fields[0] == "Z":
        return False
    try:
        return "sleep" in open(f"/proc/{pid}/cmdline").read() or "amiconfig" in open(
            f"/proc/{pid}/cmdline").read()
    except OSError:
        return False

