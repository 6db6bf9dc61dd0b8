"""The sandbox itself: a machine sees only what its test sets up.

Detection (``detect.py``) and cloud-init's disk datasources run ``blkid``.
Inside the sandbox it must find no disk of the host's, nor the loop devices
that other tests attach for a moment (busybox ``mount`` of an image file
does, even when the mount then fails): a disk labelled ``CONTEXT`` seen by
one boot and not the next made the fallback's log differ between runs.
"""

from __future__ import annotations

from tests.cloudinit.helpers import assert_clean_boot
from tests.harness import sandbox

RECORD = (
    "#cloud-config\n"
    "bootcmd:\n"
    " - [sh, -c, 'tail -n +3 /proc/partitions > /var/log/partitions']\n"
    " - [sh, -c, 'find /dev -type b > /var/log/block-devices']\n"
    " - [sh, -c, 'blkid -c /dev/null -o export > /var/log/blkid; true']\n"
    " - [sh, -c, 'for n in null zero urandom tty; do [ -c /dev/$n ] && echo $n; done"
    " > /var/log/char-devices']\n"
)


def test_the_machine_has_no_disk_of_the_hosts(tmp_path):
    release = sandbox.releases()[-1]
    machine = sandbox.Machine(tmp_path / "machine", release)
    machine.write_seed("EC2", RECORD, {"instance-id": "i-sandbox"})
    result = machine.boot(sandbox.BOOT_STAGES[:2])
    assert_clean_boot(machine, result)
    log = machine.dir / "var-log"
    assert (log / "partitions").read_text() == ""
    assert (log / "block-devices").read_text() == ""
    assert (log / "blkid").read_text() == ""
    # what programs need is still there
    assert (log / "char-devices").read_text().split() == ["null", "zero", "urandom", "tty"]
