"""A whole boot with a HEPiX context CD carrying a site context.

The CD (this project's make-iso code: ``--format hepix --prolog --epilog
--file``) goes on the VM's CD-ROM; the microboot stage in the guest keeps the
site context in the scratch disk's seed (``hepix/``), without mounting the CD
a second time later. Real cloud-init (the newest release) then boots on that
seed and runs ``prolog.sh`` before the user's contextualization and
``epilog.sh`` after it, once.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from cloudinit_cernvm.context_image import context, formats, iso9660
from tests.cloudinit.helpers import assert_clean_boot
from tests.harness import sandbox

from . import conftest, image, qemu
from .providers import CLOUDS, MEDIA_HOST, MEDIA_ID, RUNCMD_MARKER, SSH_KEY, USER_DATA

REPO = Path(__file__).resolve().parents[2]
AMICONFIG = REPO / "tests" / "fakes" / "amiconfig"
EVENTS = "/var/log/hepix-events"
COUNT = "/var/log/fake-amiconfig/count"
CONTEXT_DIR = "/var/lib/cloud/hepix-context"

#: each script says whether the user's runcmd and amiconfig ran before it
PROLOG = (f'#!/bin/bash\necho "prolog $1 runcmd=$(cat {RUNCMD_MARKER} 2>/dev/null)'
          f' amiconfig=$(cat {COUNT} 2>/dev/null) site=$(cat ./site.conf)" >> {EVENTS}\n'
          ).encode()
EPILOG = (f'#!/bin/bash\necho "epilog $1 runcmd=$(cat {RUNCMD_MARKER} 2>/dev/null)'
          f' amiconfig=$(cat {COUNT} 2>/dev/null) vmid=$VMID" >> {EVENTS}\n').encode()


def test_site_context_from_the_cd_runs_around_the_user_context(vm_image: image.VMImage,
                                                               tmp_path: Path) -> None:
    cloud = CLOUDS["HEPiX"]
    ctx = context.Context(instance_id=MEDIA_ID, user_data=USER_DATA, ssh_keys=[SSH_KEY],
                                hostname=MEDIA_HOST, prolog=PROLOG, epilog=EPILOG,
                                files={"site.conf": b"cern"})
    iso = tmp_path / "context.iso"
    iso9660.write_image(formats.build_tree("hepix", ctx), "CONTEXT", str(iso))
    res = qemu.boot(smbios=cloud.dmi, cdrom=iso, guestfwd=[], workdir=tmp_path / "boot",
                    image=vm_image, timeout=150)
    conftest.record_boot("hepix_site", res)
    assert res.powered_off and not res.timed_out, res.serial[-3000:]
    assert res.exit_status == 0, res.fetch_stderr
    assert "HEPiX site context: 5 files" in res.fetch_stderr
    assert res.seed is not None
    assert {k: v for k, v in res.seed.items() if k.startswith("hepix/")} == {
        "hepix/prolog.sh": PROLOG, "hepix/epilog.sh": EPILOG, "hepix/site.conf": b"cern",
        "hepix/root.pub": (SSH_KEY + "\n").encode(),
        "hepix/context.sh": formats.build_tree("hepix", ctx)["context.sh"]}
    assert res.seed_modes["hepix"] == 0o700

    # real cloud-init on the seed the guest wrote
    release = sandbox.releases()[-1]
    extra = {"datasource": {"CernVM": {
        "amiconfig_command": f"{AMICONFIG} -c {AMICONFIG}-default.cfg",
        "amiconfig_done_file": "/var/log/amiconfig-user.done",
        "hepix_context_dir": CONTEXT_DIR}}}
    machine = sandbox.Machine(tmp_path / "machine", release, extra_config=extra)
    assert res.workdir is not None
    shutil.copytree(res.workdir / "out" / "context", machine.seed_dir, dirs_exist_ok=True)
    for path in [machine.seed_dir, *machine.seed_dir.rglob("*")]:
        path.chmod(0o700 if path.is_dir() else 0o600)
    for _ in range(2):  # the second boot is the same instance: nothing again
        assert_clean_boot(machine, machine.boot())
    assert not [ln for ln in machine.log.splitlines() if "[WARNING]" in ln]
    got = machine.host_path(EVENTS).read_text().splitlines()
    assert got == ["prolog start runcmd= amiconfig= site=cern",
                   f"epilog start runcmd=consumed amiconfig=1 vmid={MEDIA_ID}"], got
