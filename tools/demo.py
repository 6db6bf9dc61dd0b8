"""``make demo``: one contextualized CernVM boot, end to end, in a sandbox.

1. A simulated EC2 instance (DMI strings in a fake system root, a loopback
   instance metadata service) serves ``examples/user-data-legacy.txt``, an
   old-syntax context. The real microboot stage (busybox sh and curl)
   recognises the cloud, fetches the user-data once and writes the seed.
2. The newest cloud-init release runs all four boot stages in the sandbox
   (private namespaces, no network) with the CernVM datasource on that seed;
   amiconfig is the stand-in of the tests, which records what it received.
3. The demo prints what happened: the provider, the instance, each
   user-data part and what was done with it.

    python tools/demo.py [USER-DATA-FILE]
"""

from __future__ import annotations

import email
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes.metadata import Instance, MetadataService
from tests.harness import sandbox
from tests.microboot.conftest import Machine as FakeSystem
from tests.microboot.conftest import busybox_path, run_fetch

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "user-data-legacy.txt"
AMICONFIG_STANDIN = REPO / "tests" / "fakes" / "amiconfig"


def heading(text: str) -> None:
    """A section title."""
    print(f"\n== {text}")


def microboot(top: Path, user_data: bytes, seed_dir: Path) -> None:
    """Run the microboot stage against a simulated EC2 and show its decisions."""
    heading("1. microboot: recognise the cloud from local evidence, fetch once")
    system = FakeSystem(dmi={"sys_vendor": "Amazon EC2", "product_name": "m5.large",
                             "product_uuid": "EC2E1916-9099-7CAF-FD21-012345678901"})
    instance = Instance(instance_id="i-0cern0vm0demo0001", hostname="cvm-demo.example.org")
    with MetadataService("EC2", user_data, instance=instance) as imds:
        run = run_fetch(busybox_path(top / "bin"), top, system, imds.url, args=[str(seed_dir)])
        requests = [f"{r.method} {r.path}" for r in imds.requests]
    for line in run.stderr.splitlines():
        print(f"   {line}")
    print(f"   exit status {run.rc}; {len(requests)} metadata requests:")
    for request in requests:
        print(f"     {request}")
    if run.rc != 0:
        raise SystemExit("demo: the microboot stage wrote no seed")
    print("   seed /mnt/.rw/context:")
    for path in sorted(seed_dir.iterdir()):
        print(f"     {path.name:10} {path.stat().st_size:5} bytes, mode "
              f"{path.stat().st_mode & 0o777:04o}")


def cloud_init(top: Path, seed_dir: Path) -> sandbox.Machine:
    """Boot the newest cloud-init on the seed; show the stages and v1 keys."""
    release = sandbox.releases()[-1]
    heading(f"2. cloud-init {release} with the CernVM datasource "
            "(sandbox: private namespaces, no network)")
    extra = {}
    if AMICONFIG_STANDIN.exists():
        extra = {"datasource": {"CernVM": {"amiconfig_command": str(AMICONFIG_STANDIN)}}}
    machine = sandbox.Machine(top / "machine", release, extra_config=extra)
    machine.seed_dir.parent.mkdir(parents=True, exist_ok=True)
    seed_dir.rename(machine.seed_dir)
    result = machine.boot()
    for stage in result.stages:
        state = "ok" if stage.returncode == 0 else f"exit {stage.returncode}"
        print(f"   cloud-init {' '.join(stage.args):24} {stage.seconds * 1000:6.0f} ms  {state}")
    v1 = machine.query("v1")
    print(f"   provider {v1['cloud_name']} (platform {v1['platform']}, {v1['subplatform']})")
    print(f"   instance {v1['instance_id']}, hostname {v1['local_hostname']}, "
          f"region {v1['region']}")
    status = machine.cloud_init("status").stdout.strip().splitlines()
    print(f"   {status[0] if status else 'no status'}")
    return machine


def parts(machine: sandbox.Machine) -> None:
    """Each user-data part cloud-init saw, and what was done with it."""
    heading("3. user-data parts, parsed once, and what was done with each")
    processed = machine.instance_dir / "user-data.txt.i"
    message = email.message_from_bytes(processed.read_bytes())
    records = machine.instance_dir / "cernvm"
    for index, part in enumerate(p for p in message.walk() if not p.is_multipart()):
        ctype = part.get_content_type()
        size = len(part.get_payload(decode=True) or b"")
        print(f"   {index + 1}. {ctype} ({size} bytes): {outcome(ctype, machine, records)}")


def outcome(ctype: str, machine: sandbox.Machine, records: Path) -> str:
    """What the consumer of this content type did, from its own records."""
    if ctype in ("text/amiconfig", "text/amiconfig-user-data"):
        record = records / "amiconfig.json"
        if record.exists():
            done = json.loads(record.read_text())
            command = done.get("command")
            command = " ".join(command) if isinstance(command, list) else command
            if command == str(AMICONFIG_STANDIN):
                command = "the tests' stand-in amiconfig"
            return (f"collected ({done.get('parts')} part(s)) and handed to amiconfig once "
                    f"({command}), exit status {done.get('exit_status')}")
        return "not handled (no amiconfig record)"
    if ctype == "text/ucernvm":
        record = records / "ucernvm.json"
        if record.exists():
            settings = json.loads(record.read_text()).get("settings", {})
            return f"µCernVM settings recorded: {', '.join(settings) or 'none'}"
        return "not handled (no µCernVM record)"
    if ctype == "text/x-shellscript-before-amiconfig":
        return "run before amiconfig, once per instance"
    if ctype == "text/x-shellscript":
        return "run by cloud-init's scripts_user (final stage), once per instance"
    if ctype == "text/cloud-config":
        return "merged into cloud-init's configuration"
    return "left to cloud-init"


def main(argv: list[str]) -> int:
    """Run the demo on the example context (or on the file given)."""
    source = Path(argv[1]) if len(argv) > 1 else EXAMPLE
    user_data = source.read_bytes()
    print(f"user-data: {source} ({len(user_data)} bytes)")
    with tempfile.TemporaryDirectory(prefix="cernvm-demo-") as tmp:
        top = Path(tmp)
        seed_dir = top / "context"
        microboot(top, user_data, seed_dir)
        machine = cloud_init(top, seed_dir)
        parts(machine)
        warnings = [ln.split(" - ", 2)[-1] for ln in machine.log.splitlines()
                    if "[WARNING]" in ln]
        heading(f"4. warnings in cloud-init.log: {len(warnings)}")
        for line in warnings:
            print(f"   {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
