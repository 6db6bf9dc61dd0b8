"""The HEPiX site context under real cloud-init, on every supported release.

A context CD made by ``cernvm-context make-iso --format hepix --prolog
--epilog --file`` is read by the microboot stage (busybox) into the
machine's seed; cloud-init then runs ``prolog.sh`` before anything of the
user's (a boothook, amiconfig, runcmd, a script) and ``epilog.sh`` after
all of it, once per instance, as root, in the context directory, with the
``context.sh`` variables, each within its time limit. amiconfig is the
stand-in ``tests/fakes/amiconfig``; every actor appends to one events file.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

from cloudinit_cernvm import cli
from cloudinit_cernvm import content_types as ct
from tests.cloudinit.helpers import assert_clean_boot
from tests.harness import sandbox
from tests.iso.iso_helpers import extract, fake_sysroot, fetch_context

FAKES = Path(__file__).resolve().parents[1] / "fakes"
GUARD = Path(__file__).resolve().parents[2] / "packaging" / "hepix-guard"
EVENTS = "/var/log/fake-amiconfig/events"
CONTEXT_DIR = "/var/lib/cloud/hepix-context"
DEFAULT_CFG = "/var/lib/cloud/amiconfig-etc/default.cfg"
SECRET = "s3cr3t-pw-4711"
VMID = "one-4711"

PROLOG = f"""#!/bin/bash
# a HEPiX site prolog: sourced with "start", in CONTEXT_DIR
echo "prolog $1" >> {EVENTS}
{{ echo "ARG=$1"; echo "PWD=$(pwd)"; echo "UID=$(id -u)"; env; }} > /var/log/prolog-env
ls -A > /var/log/prolog-ls
cat ./site.conf > /var/log/prolog-site
echo from-prolog > "$CONTEXT_DIR/state"
"""
EPILOG = f"""#!/bin/bash
echo "epilog $1 $(cat "$CONTEXT_DIR/state")" >> {EVENTS}
{{ echo "ARG=$1"; echo "PWD=$(pwd)"; echo "UID=$(id -u)"; env; }} > /var/log/epilog-env
"""
USER_DATA = (
    'Content-Type: multipart/mixed; boundary="B"\nMIME-Version: 1.0\n\n'
    f"--B\nContent-Type: text/cloud-boothook\n\n#!/bin/sh\necho boothook >> {EVENTS}\n"
    f"--B\nContent-Type: {ct.AMICONFIG}\n\n[cernvm]\nusers = alice:alice:{SECRET}\n"
    f"--B\nContent-Type: text/cloud-config\n\n#cloud-config\nruncmd:\n"
    f" - [sh, -c, 'echo runcmd >> {EVENTS}']\n"
    f"--B\nContent-Type: {ct.SCRIPT}\n\n#!/bin/sh\necho script >> {EVENTS}\n"
    "--B--\n"
)


def config(timeout: float = 60) -> dict:
    return {"datasource": {"CernVM": {
        "amiconfig_command": f"{FAKES / 'amiconfig'} -c {DEFAULT_CFG}",
        "amiconfig_done_file": "/var/lib/cloud/amiconfig-state/user.done",
        "hepix_context_dir": CONTEXT_DIR,
        "hepix_timeout": timeout,
    }}}


def machine_with_cd(machine_factory, tmp_path: Path, prolog: str = PROLOG,
                    epilog: str = EPILOG, timeout: float = 60) -> sandbox.Machine:
    """A machine whose seed the busybox stage wrote from make-iso's hepix CD."""
    machine = machine_factory(extra_config=config(timeout))
    cfg = machine.host_path(DEFAULT_CFG)
    cfg.parent.mkdir(parents=True)
    cfg.write_text("[general]\nenabled_plugins = rootsshkeys\ndisabled_plugins =\n")
    machine.host_path(EVENTS).parent.mkdir(parents=True)
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "user-data").write_text(USER_DATA)
    (inputs / "prolog.sh").write_text(prolog)
    (inputs / "epilog.sh").write_text(epilog)
    (inputs / "site.conf").write_text("SITE=cern\n")
    image = tmp_path / "ctx.iso"
    assert cli.main(["make-iso", "--format", "hepix", "--user-data", str(inputs / "user-data"),
                     "--prolog", str(inputs / "prolog.sh"), "--epilog", str(inputs / "epilog.sh"),
                     "--file", str(inputs / "site.conf"), "--instance-id", VMID,
                     "-o", str(image)]) == 0
    media = tmp_path / "media"
    extract(image, media / "CONTEXT")
    stage = fetch_context(media, fake_sysroot(tmp_path / "sysroot"), machine.seed_dir)
    assert stage.returncode == 0, stage.stderr.decode()
    assert (machine.seed_dir / "hepix" / "prolog.sh").read_text() == prolog
    return machine


def events(machine: sandbox.Machine) -> list[str]:
    path = machine.host_path(EVENTS)
    return path.read_text().splitlines() if path.exists() else []


def env_of(path: Path) -> dict[str, str]:
    return dict(ln.split("=", 1) for ln in path.read_text().splitlines() if "=" in ln)


def output_log(machine: sandbox.Machine) -> str:
    path = machine.dir / "var-log" / "cloud-init-output.log"
    return path.read_text(errors="replace") if path.exists() else ""


def test_prolog_before_the_user_epilog_after_once(machine_factory, tmp_path):
    machine = machine_with_cd(machine_factory, tmp_path)
    result = machine.boot()
    assert_clean_boot(machine, result)
    assert not [ln for ln in machine.log.splitlines() if "[WARNING]" in ln]

    got = events(machine)
    assert got[0] == "prolog start", got
    assert got[-1] == "epilog start from-prolog", got
    assert sorted(got[1:-1]) == ["amiconfig", "boothook", "runcmd", "script"], got

    # as HEPiX ran them: root, "start", in the context directory, with the
    # context.sh variables (EC2_USER_DATA, VMID, FILES) and CONTEXT_DIR
    for name in ("prolog", "epilog"):
        env = env_of(machine.host_path(f"/var/log/{name}-env"))
        assert env["ARG"] == "start" and env["UID"] == "0", name
        assert env["PWD"] == CONTEXT_DIR == env["CONTEXT_DIR"], name
        assert env["VMID"] == VMID and env["FILES"] == "site.conf", name
        assert base64.b64decode(env["EC2_USER_DATA"]).decode() == USER_DATA, name
    # the context directory: context.sh and the CD's files, not the scripts
    listing = machine.host_path("/var/log/prolog-ls").read_text().split()
    assert sorted(listing) == ["context.sh", "site.conf"]
    assert machine.host_path("/var/log/prolog-site").read_text() == "SITE=cern\n"

    cernvm = machine.instance_dir / "cernvm"
    record = json.loads((cernvm / "hepix.json").read_text())
    assert record["prolog"]["exit_status"] == 0 and record["epilog"]["exit_status"] == 0
    assert "EC2_USER_DATA" in record["prolog"]["variables"]
    assert "HEPiX prolog.sh exited with status 0" in machine.log
    final = result.stage("modules", "--mode", "final")
    assert "HEPiX epilog.sh exited with status 0" in final.stdout + output_log(machine)
    # no secret of context.sh in any log or record
    for text in (machine.log, output_log(machine), final.stdout,
                 (cernvm / "hepix.json").read_text()):
        assert SECRET not in text and base64.b64encode(SECRET.encode()).decode() not in text

    # the next boot of the same instance: neither runs again (a boothook does)
    assert_clean_boot(machine, machine.boot())
    assert events(machine) == [*got, "boothook"]

    # the image's own vmcontext_prolog / vmcontext_epilog, through the guard
    # (as the drop-ins run them): skipped, at boot and at shutdown
    legacy = tmp_path / "legacy-events"
    env = {"PATH": "/usr/bin:/bin", "CLOUD_INSTANCE_DIR": str(machine.instance_dir),
           "HEPIX_INIT_DIR": str(FAKES / "init.d"), "LEGACY_EVENTS": str(legacy),
           "HEPIX_CD": str(tmp_path / "media" / "CONTEXT"),
           "CONTEXT_DIR": str(tmp_path / "legacy-context")}
    for phase in ("prolog", "epilog"):
        dropin = (GUARD.parent / "systemd" / f"vmcontext_{phase}.service.d"
                  / "cloudinit-cernvm.conf").read_text().splitlines()
        for command in ("start", "stop"):
            line = f"/usr/libexec/cloudinit-cernvm/hepix-guard {phase} {command}"
            assert f"Exec{command.title()}={line}" in dropin
            out = subprocess.run([str(GUARD), phase, command], env=env, capture_output=True,
                                 text=True, check=True).stdout
            assert "skipped" in out
    assert not legacy.exists() and events(machine) == [*got, "boothook"]
    # without cloud-init's record, the image's services run as they did
    (cernvm / "hepix.json").unlink()
    for phase in ("prolog", "epilog"):
        subprocess.run([str(GUARD), phase, "start"], env=env, check=True, capture_output=True)
    assert legacy.read_text().split() == ["legacy-prolog-start", "legacy-epilog-start"]


def test_time_limit_and_failure_one_line_each_boot_goes_on(machine_factory, tmp_path):
    # a duration no other process on the host sleeps (this worker's pid), so
    # that pgrep finds only these
    nap = f"47.{os.getpid()}"
    prolog = f"#!/bin/bash\necho 'prolog start' >> {EVENTS}\nsleep {nap} &\nsleep {nap}\n"
    epilog = f"#!/bin/bash\necho 'epilog start' >> {EVENTS}\nexit 3\n"
    machine = machine_with_cd(machine_factory, tmp_path, prolog=prolog, epilog=epilog,
                              timeout=2)
    result = machine.boot()
    assert "Traceback" not in machine.log
    got = events(machine)
    # the prolog killed at its limit, the rest of the boot as before
    assert got[0] == "prolog start" and got[-1] == "epilog start", got
    assert sorted(got[1:-1]) == ["amiconfig", "boothook", "runcmd", "script"], got
    warnings = [ln for ln in machine.log.splitlines() if "[WARNING]" in ln]
    assert len(warnings) == 1, warnings
    assert "HEPiX prolog.sh ran past its limit of 2 s and was killed" in warnings[0]
    # the prolog's whole process group went (its background sleep too)
    assert subprocess.run(["pgrep", "-f", f"^sleep {nap}$"], capture_output=True).returncode == 1
    final = result.stage("modules", "--mode", "final")
    assert final.returncode == 0
    line = "CernVM: WARNING: HEPiX epilog.sh exited with status 3"
    assert final.stdout.count(line) == 1, final.stdout
    assert line in output_log(machine)
    record = json.loads((machine.instance_dir / "cernvm" / "hepix.json").read_text())
    assert record["prolog"]["timed_out"] is True and record["epilog"]["exit_status"] == 3
    status = result.status
    assert "status: done" in status or "status: degraded" in status, status
