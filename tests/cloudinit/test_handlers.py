"""The part-handlers under real cloud-init, on every supported release.

amiconfig is the stand-in ``tests/fakes/amiconfig`` (it honours the
contract in DESIGN.md and records each run under ``/var/log/fake-amiconfig``,
which the sandbox keeps). Boots are few and each checks much: a boot costs
seconds per release.
"""

from __future__ import annotations

import json
import stat
import subprocess
import time
from pathlib import Path

from cloudinit_cernvm import content_types as ct
from tests.cloudinit.helpers import assert_clean_boot
from tests.harness import sandbox

FAKE = Path(__file__).resolve().parents[1] / "fakes" / "amiconfig"
DONE = "/var/lib/cloud/amiconfig-state/user.done"
#: the stand-in's default.cfg (``-c``, as the real amiconfig takes it)
DEFAULT_CFG = "/var/lib/cloud/amiconfig-etc/default.cfg"
DEFAULT_PLUGINS = "[general]\nenabled_plugins = rootsshkeys\ndisabled_plugins =\n"
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


def config(command: str, timeout: float = 60, **more) -> dict:
    return {"datasource": {"CernVM": {
        "amiconfig_command": f"{command} -c {DEFAULT_CFG}",
        "amiconfig_timeout": timeout,
        "amiconfig_done_file": DONE,
        "extra_user_data": "/var/lib/cloud/site/extra-user-data",
        **more,
    }}}


def fake_machine(machine_factory, **kwargs) -> sandbox.Machine:
    """A machine whose amiconfig is the stand-in, with its default.cfg."""
    machine = machine_factory(**kwargs)
    cfg = machine.host_path(DEFAULT_CFG)
    cfg.parent.mkdir(parents=True)
    cfg.write_text(DEFAULT_PLUGINS)
    record_dir(machine).mkdir(parents=True)
    return machine


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
    machine = fake_machine(machine_factory, extra_config=config(str(FAKE)))
    user_data = mime(
        (ct.SCRIPT_BEFORE,
         f"#!/bin/sh\necho before >> {EVENTS}\nenv > /var/log/before-env\n"),
        (ct.AMICONFIG,
         "[amiconfig]\nplugins = condor\n[cernvm]\nusers = alice:alice:pw\n"),
        (ct.UCERNVM,
         "[ucernvm-begin]\ncvmfs_branch=cernvm-prod.cern.ch\nresize_rootfs=on\n"
         f"cvmfs_proxy=http://squid:3128\ncernvm_inject={INJECT}\n[ucernvm-end]\n"),
        ("text/cloud-config",
         "#cloud-config\nruncmd:\n"
         f" - [sh, -c, 'echo runcmd >> {EVENTS}; env > /var/log/runcmd-env']\n"),
        (ct.AMICONFIG,
         "## template: jinja\n[condor]\nhost = {{ v1.local_hostname }}\n"
         "instance = {{ instance_id }}\ncloud = {{ cloud_name }}\nprovider = {{ provider }}\n"),
        (ct.AMICONFIG, "## template: jinja\n[squid]\nbroken = {{ no_such_name }}\n"),
        (ct.SCRIPT, f"#!/bin/sh\necho after >> {EVENTS}\nenv > /var/log/after-env\n"),
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
    assert json.loads((run / "argv.json").read_text()) == [str(FAKE), "-c", DEFAULT_CFG]

    # the payload: every amiconfig part in order, the µCernVM block in its
    # place (amiconfig read it before), the template rendered, the broken
    # template's sections as written
    cernvm = machine.instance_dir / "cernvm"
    payload = (run / "payload").read_text()
    assert payload == (
        "[amiconfig]\nplugins = condor\n[cernvm]\nusers = alice:alice:pw\n"
        "[ucernvm-begin]\ncvmfs_branch=cernvm-prod.cern.ch\nresize_rootfs=on\n"
        f"cvmfs_proxy=http://squid:3128\ncernvm_inject={INJECT}\n[ucernvm-end]\n"
        "[condor]\nhost = cvm-worker-17\ninstance = i-0a1b2c3d4e5f60718\n"
        "cloud = aws\nprovider = EC2\n"
        "[squid]\nbroken = {{ no_such_name }}\n"
    )
    assert "repositories" not in json.loads((run / "sections.json").read_text())["cernvm"]
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
    assert meta == {"meta-data/public-keys/0/openssh-key": META["public-keys"][0] + "\n"}
    tree = cernvm / "amiconfig-metadata" / "2007-12-15"
    assert (tree / "meta-data" / "instance-id").read_text() == META["instance-id"]
    assert (tree / "meta-data" / "local-hostname").read_text() == META["local-hostname"]
    assert (tree / "meta-data" / "ami-launch-index").read_text() == "0"
    assert (tree / "user-data").read_text() == payload

    # what the handler recorded
    assert mode(cernvm) == 0o700
    record = json.loads((cernvm / "amiconfig.json").read_text())
    assert record["exit_status"] == 0 and record["parts"] == 3
    assert record["command"] == [str(FAKE), "-c", DEFAULT_CFG] and record["done_marker"] == DONE
    assert [s["exit_status"] for s in record["before_scripts"]] == [0]
    assert machine.host_path(DONE).exists()
    assert record["plugins"]["enabled"] == ["condor", "rootsshkeys"]
    assert "Plugin disabled" not in log

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
    machine = fake_machine(machine_factory, extra_config=config(link, timeout=2))
    host_link = machine.host_path(link)
    host_link.parent.mkdir(parents=True)
    host_link.symlink_to(FAKE)
    behaviour = record_dir(machine) / "behaviour"
    old_syntax = (
        f"#!/bin/sh.before\necho before >> {EVENTS}\nexit\n"
        "[amiconfig]\nplugins = condor\n[cernvm]\norganisations = cms\n"
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



GUARD = Path(__file__).resolve().parents[2] / "packaging" / "amiconfig-user-guard"
LEGACY = Path(__file__).resolve().parents[1] / "fakes" / "amiconfig.sh"


def _new_instance(machine: sandbox.Machine, iid: str, user_data: str,
                  meta: dict | None = None) -> tuple[Path, dict]:
    machine.write_seed("EC2", user_data, {**META, "instance-id": iid, **(meta or {})})
    assert_clean_boot(machine, machine.boot())
    assert "Unhandled" not in machine.log
    cernvm = machine.instance_dir / "cernvm"
    return cernvm, json.loads((cernvm / "amiconfig.json").read_text())


def test_amiconfig_runs_once_on_every_new_instance_whatever_the_user_data(machine_factory):
    """No amiconfig part: amiconfig runs anyway (default plugins), once; user.done stops it."""
    machine = fake_machine(machine_factory, extra_config=config(str(FAKE)))
    kinds = {
        "script": f"#!/bin/sh\necho script >> {EVENTS}\n",
        "cloud-config": f"#cloud-config\nruncmd:\n - [sh, -c, 'echo runcmd >> {EVENTS}']\n",
        "ucernvm": "[ucernvm-begin]\ncvmfs_branch=cernvm-prod.cern.ch\n[ucernvm-end]\n",
    }
    for count, (kind, user_data) in enumerate(kinds.items(), start=1):
        machine.host_path(DONE).unlink(missing_ok=True)
        _, record = _new_instance(machine, f"i-only-{kind}", user_data)
        assert runs(machine) == count, kind
        assert record["parts"] == 0 and record["exit_status"] == 0, kind
        assert record["done_marker"] == DONE and machine.host_path(DONE).exists(), kind
        # the default plugin got the instance's key from the local tree
        configured = json.loads((record_dir(machine) / f"run-{count}" / "configured.json")
                                .read_text())
        assert configured == {"rootsshkey": META["public-keys"][0] + "\n"}, kind
        assert not warnings(machine), kind
    assert events(machine) == ["amiconfig", "script", "amiconfig", "runcmd", "amiconfig"]

    # user.done there before the handler (the image's own service ran, or the
    # image was saved after a run): not run again, and the record says why
    _, record = _new_instance(machine, "i-done-before", kinds["cloud-config"])
    assert runs(machine) == 3
    assert f"{DONE} exists" in record["skipped"] and record["exit_status"] is None
    assert not warnings(machine)  # nothing of amiconfig's was asked: INFO
    # ... with amiconfig sections, the user is told they were not applied
    _, record = _new_instance(machine, "i-done-sections", "[amiconfig]\nplugins = condor\n")
    assert runs(machine) == 3 and record["skipped"]
    assert len([w for w in warnings(machine) if "not applied" in w]) == 1


def test_legacy_amiconfig_after_cloud_init_does_nothing(machine_factory, tmp_path):
    """Even when the handler could not run amiconfig to its end (not marked done)."""
    missing = "/var/lib/cloud/fake-bin/amiconfig"
    machine = fake_machine(machine_factory, extra_config=config(missing))
    _, record = _new_instance(machine, "i-legacy", f"#!/bin/sh\necho script >> {EVENTS}\nexit\n"
                              "[amiconfig]\nplugins = condor\n")
    assert record["error"] and not machine.host_path(DONE).exists()
    legacy_events = tmp_path / "legacy-events"
    env = {"PATH": "/usr/bin:/bin", "AMICONFIG_DONE_USER": str(machine.host_path(DONE)),
           "AMI_DONE_USER": str(machine.host_path(DONE)), "AMICONFIG": str(FAKE),
           "LEGACY_EVENTS": str(legacy_events),
           "CLOUD_INSTANCE_DIR": str(machine.instance_dir)}
    # the drop-in runs the guard first, then the image's service runs amiconfig.sh user
    dropin = (GUARD.parent / "systemd" / "vmcontext_hepix.service.d" / "cloudinit-cernvm.conf")
    assert "ExecStartPre=-/usr/libexec/cloudinit-cernvm/amiconfig-user-guard" in (
        dropin.read_text().splitlines())
    guard = subprocess.run([str(GUARD)], env=env, capture_output=True, text=True, check=True)
    assert "touched" in guard.stdout
    legacy = subprocess.run([str(LEGACY), "user"], env=env, capture_output=True, text=True,
                            check=True)
    assert "already run, skipping" in legacy.stdout
    assert not legacy_events.exists() and runs(machine) == 0
    assert events(machine) == ["script"]
    # without cloud-init's record (cloud-init did not handle it), the legacy step runs
    machine.host_path(DONE).unlink()
    (machine.instance_dir / "cernvm" / "amiconfig.json").unlink()
    subprocess.run([str(GUARD)], env=env, check=True, capture_output=True)
    subprocess.run([str(LEGACY), "user"], env=env, check=True, capture_output=True,
                   cwd=str(tmp_path))
    assert legacy_events.read_text() == "legacy\n"


def test_extra_user_data_is_appended_and_its_ucernvm_settings_recorded(machine_factory):
    machine = fake_machine(machine_factory, extra_config=config(str(FAKE)))
    site = machine.host_path("/var/lib/cloud/site/extra-user-data")
    site.parent.mkdir(parents=True)
    site.write_text("[squid]\nfrom = root\n")
    user_data = ("[amiconfig]\nplugins = noip\n[noip]\nusername = u\npassword = p\n"
                 "prefix = cvm\ndomain = example.org\nstart = 1\n")
    extra = ("site_option = dropped\n[ucernvm-begin]\ncvmfs_branch=cernvm-sl7.cern.ch\n"
             "[ucernvm-end]\nafter_block = 1\n[condor]\npool = site\n")
    seed = machine.write_seed("EC2", user_data, {**META, "ami-launch-index": "2"})
    (seed / "extra-user-data").write_text(extra)
    (seed / "extra-ucontext").write_text("_UCONTEXT_CVMFS_BRANCH=cernvm-sl7.cern.ch\n")
    for name in ("extra-user-data", "extra-ucontext"):
        (seed / name).chmod(0o600)
    assert_clean_boot(machine, machine.boot())
    run = record_dir(machine) / "run-1"
    sections = json.loads((run / "sections.json").read_text())
    # the seed's copy wins over the root's; its leading option stays out of [noip]
    assert "squid" not in sections and "site_option" not in sections["noip"]
    assert sections["condor"] == {"pool": "site"}
    assert sections["ucernvm-end"] == {"after_block": "1"}
    # noip found ami-launch-index in the local tree: cvm + 1 + 2
    assert json.loads((run / "configured.json").read_text())["noip"] == "cvm03.example.org"
    cernvm = machine.instance_dir / "cernvm"
    recorded = json.loads((cernvm / "extra-ucernvm.json").read_text())
    assert recorded["settings"] == {"_UCONTEXT_CVMFS_BRANCH": "cernvm-sl7.cern.ch"}
    assert recorded["compared_with_ucontext"] and recorded["differences"] == []
    assert not warnings(machine)
