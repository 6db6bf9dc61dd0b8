"""Upgrades: the cache an earlier version left, read by this version.

Every later cloud-init process unpickles the datasource that the first
stage cached (``/var/lib/cloud/instance/obj.pkl``): the network stage and
both module stages trust it, and the local stage of the next boot loads it
before it checks it. The earlier version is the tagged release ``v0.1.0``
of this package, taken from git history (``tests/harness/earlier.py``); it
boots under each cloud-init release of the matrix, then this version (and,
where there is one, a newer cloud-init release, as an image update between
boots brings) runs the next stage and the next boot. Nothing may be lost,
nothing run twice, nothing logged as a warning.

The attributes that later versions add to the datasource are covered by
``DataSourceCernVM._unpickle`` (and, on 20.4, which has no ``_unpickle``,
by the class's own ``__setstate__``): the second half of this file pickles
the datasource with real cloud-init, strips attributes from the state as an
older version would lack them, and loads it back.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from cloudinit_cernvm import content_types as ct
from tests.cloudinit.helpers import assert_clean_boot
from tests.harness import earlier as earlier_release
from tests.harness import sandbox

FAKE = sandbox.REPO / "tests" / "fakes" / "amiconfig"
DEFAULT_CFG = "/var/lib/cloud/amiconfig-etc/default.cfg"
DONE = "/var/lib/cloud/amiconfig-state/user.done"
COUNTS = "/var/log/upgrade-counts"
META = {
    "instance-id": "i-0f1e2d3c4b5a69788",
    "local-hostname": "cvm-upgraded-3",
    "public-keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIUpgradeKey user@host"],
    "availability-zone": "eu-central-1b",
    "region": "eu-central-1",
}
UCONTEXT = "_UCONTEXT_CVMFS_BRANCH=cernvm-prod.cern.ch\n"


def _count(name: str) -> str:
    return f"echo {name} >> {COUNTS}"


#: what the user-data does, one line in COUNTS each time: per instance
#: (runcmd, a part script, amiconfig and its before script), once (a
#: per-once script written by write_files), at every boot (bootcmd)
USER_DATA = (
    'Content-Type: multipart/mixed; boundary="UPGRADE"\nMIME-Version: 1.0\n\n'
    f"--UPGRADE\nContent-Type: {ct.SCRIPT_BEFORE}\n\n#!/bin/sh\n{_count('before')}\n"
    f"--UPGRADE\nContent-Type: {ct.AMICONFIG}\n\n[amiconfig]\nplugins = condor\n"
    "[condor]\nhost = worker\n"
    f"--UPGRADE\nContent-Type: {ct.UCERNVM}\n\n[ucernvm-begin]\n"
    "cvmfs_branch=cernvm-prod.cern.ch\n[ucernvm-end]\n"
    "--UPGRADE\nContent-Type: text/cloud-config\n\n#cloud-config\n"
    f"bootcmd:\n - [sh, -c, '{_count('bootcmd')}']\n"
    f"runcmd:\n - [sh, -c, '{_count('runcmd')}']\n"
    "write_files:\n - path: /var/lib/cloud/scripts/per-once/once.sh\n"
    f"   permissions: '0755'\n   content: |\n     #!/bin/sh\n     {_count('once')}\n"
    f"--UPGRADE\nContent-Type: {ct.SCRIPT}\n\n#!/bin/sh\n{_count('script')}\n"
    "--UPGRADE--\n"
)
#: after the first boot of the instance; bootcmd counts boots
FIRST_BOOT = {"before": 1, "amiconfig": 1, "runcmd": 1, "once": 1, "script": 1, "bootcmd": 1}

RELEASES = sandbox.wanted_releases()
#: (the release that pickled, the release that reads): each release reads
#: its own cache; each one's cache is read by the next release of the
#: matrix, and the oldest's by the newest (an image two releases behind)
PAIRS = [(r, r) for r in RELEASES] + list(zip(RELEASES, RELEASES[1:]))
if len(RELEASES) > 2:
    PAIRS.append((RELEASES[0], RELEASES[-1]))


@pytest.fixture(scope="session")
def earlier(tmp_path_factory) -> Path:
    """The package (and its cloud.cfg drop-in) of the earlier release, from git."""
    tree = earlier_release.extract(tmp_path_factory.mktemp("earlier") / "tree",
                                   "cloudinit_cernvm", "cfg")
    assert (tree / "cloudinit_cernvm" / "DataSourceCernVM.py").is_file()
    return tree


def machine_of(tmp_path: Path, name: str, release: str, code: Path,
               cernvm_config: Path | None = None, seed_dir: str | None = None) -> sandbox.Machine:
    """A machine running RELEASE and the package in CODE, amiconfig the stand-in,
    its cloud.cfg drop-in CODE's (or CERNVM_CONFIG), the seed in SEED_DIR."""
    machine = sandbox.Machine(
        tmp_path / name, release,
        extra_config={"datasource": {"CernVM": {
            "amiconfig_command": f"{FAKE} -c {DEFAULT_CFG}",
            "amiconfig_done_file": DONE,
        }}},
        cernvm_config=cernvm_config or code / "cfg" / "90_cernvm.cfg",
    )
    machine.code_dir = code
    cfg = machine.host_path(DEFAULT_CFG)
    cfg.parent.mkdir(parents=True)
    cfg.write_text("[general]\nenabled_plugins = rootsshkeys\ndisabled_plugins =\n")
    (machine.dir / "var-log" / "fake-amiconfig").mkdir()
    machine.write_seed("EC2", USER_DATA, META, ucontext=UCONTEXT)
    if seed_dir is not None:
        machine.seed_dir.rename(machine.host_path(seed_dir))
    return machine


def upgrade(machine: sandbox.Machine, release: str) -> None:
    """This version of the package (and RELEASE of cloud-init) in the machine."""
    machine.code_dir = sandbox.REPO
    if release != machine.release:
        machine.upgrade_cloud_init(release)


def counts(machine: sandbox.Machine) -> dict[str, int]:
    """How often each piece of the user-data ran; amiconfig from its own record."""
    found: dict[str, int] = {}
    path = machine.host_path(COUNTS)
    for line in path.read_text().split() if path.exists() else []:
        found[line] = found.get(line, 0) + 1
    count = machine.dir / "var-log" / "fake-amiconfig" / "count"
    if count.exists():
        found["amiconfig"] = int(count.read_text())
    return found


def status(machine: sandbox.Machine) -> str:
    """``cloud-init status --long``: every release has it; 23.4+ says degraded."""
    shown = machine.cloud_init("status", "--long")
    assert shown.returncode == 0, f"cloud-init {machine.release}: {shown.stdout}{shown.stderr}"
    return shown.stdout


def assert_whole(machine: sandbox.Machine, result: sandbox.BootResult, runs: dict) -> None:
    """Clean stages, no warning at all, not degraded, nothing lost, RUNS counted."""
    rel = f"cloud-init {machine.release}"
    assert_clean_boot(machine, result)
    warnings = [ln for ln in machine.log.splitlines() if "[WARNING]" in ln or "[ERROR]" in ln]
    assert warnings == [], f"{rel}: " + "\n".join(warnings)
    shown = status(machine)
    assert "status: done" in shown and "degraded" not in shown, f"{rel}: {shown}"
    assert "errors: []" in shown or "error" not in shown.lower(), f"{rel}: {shown}"
    # nothing lost: what cloud-init reports, what it kept, what the handlers did
    v1 = result.v1 or machine.query("v1")
    assert (v1["platform"], v1["cloud_name"], v1["instance_id"]) == (
        "cernvm", "aws", META["instance-id"]), f"{rel}: {v1}"
    assert v1["local_hostname"] == META["local-hostname"]
    assert v1["public_ssh_keys"] == META["public-keys"]
    assert (v1["region"], v1["availability_zone"]) == (META["region"],
                                                        META["availability-zone"])
    assert [p.name for p in (machine.cloud_dir / "instances").iterdir()] == [META["instance-id"]]
    kept = (machine.instance_dir / "user-data.txt").read_text()
    assert "Content-Type: text/amiconfig" in kept and "[condor]" in kept, kept
    cernvm = machine.instance_dir / "cernvm"
    record = json.loads((cernvm / "amiconfig.json").read_text())
    assert record["exit_status"] == 0 and record["parts"] == 1, record
    assert "host = worker" in (cernvm / "amiconfig-user-data").read_text()
    settings = json.loads((cernvm / "ucernvm.json").read_text())["settings"]
    assert settings["_UCONTEXT_CVMFS_BRANCH"] == "cernvm-prod.cern.ch"
    assert machine.host_path(DONE).exists()
    # nothing run twice
    assert counts(machine) == runs, f"{rel}: {counts(machine)}"


@pytest.mark.parametrize(("before", "after"), PAIRS,
                         ids=[f"{a}-to-{b}" for a, b in PAIRS])
def test_next_stage_reads_the_cache_of_the_earlier_version(earlier, tmp_path, before, after):
    """v0.1.0's local stage cached the datasource; this version (on AFTER) runs
    the network stage, which trusts that cache, and the module stages."""
    machine = machine_of(tmp_path, "mid-boot", before, earlier)
    local = machine.run(sandbox.BOOT_STAGES[0])
    assert local.ok and "Traceback" not in machine.log, machine.log[-3000:]
    pickled = machine.instance_dir / "obj.pkl"
    assert pickled.exists(), "the earlier version cached no datasource"
    assert counts(machine) == {}
    kept = tmp_path / "obj.pkl"
    kept.write_bytes(pickled.read_bytes())

    upgrade(machine, after)
    # the earlier version's cache, read by this version: every attribute there
    found = probe_cache(after, kept)
    assert found["missing"] == [] and found["instance_id"] == META["instance-id"], found
    mark = len(machine.log)
    result = machine.run(*sandbox.BOOT_STAGES[1:])  # the same boot: /run kept
    assert "restored from cache" in machine.log[mark:].split("running 'modules")[0], (
        machine.log[mark:])
    assert_whole(machine, result, FIRST_BOOT)

    # the next boot of the same instance runs only what runs at every boot
    assert_whole(machine, machine.boot(), {**FIRST_BOOT, "bootcmd": 2})


@pytest.mark.parametrize(("before", "after"), PAIRS,
                         ids=[f"{a}-to-{b}" for a, b in PAIRS])
def test_reboot_after_upgrade_keeps_the_instance(earlier, tmp_path, before, after):
    """A whole boot on v0.1.0 (on BEFORE), then the package (and cloud-init)
    upgraded: ``cloud-init modules`` run by hand trusts the cache of the
    earlier network stage (it holds the parsed user-data), and the next boot's
    local stage loads it: the same instance, nothing run again."""
    machine = machine_of(tmp_path, "reboot", before, earlier)
    assert_whole(machine, machine.boot(), FIRST_BOOT)
    kept = tmp_path / "obj.pkl"
    kept.write_bytes((machine.instance_dir / "obj.pkl").read_bytes())

    upgrade(machine, after)
    found = probe_cache(after, kept)
    assert found["missing"] == [] and found["instance_id"] == META["instance-id"], found
    # A module stage logs only after it has read the cache; with the seed
    # away, a cache it could not read would leave it no datasource but None
    # (its final message names the datasource it used).
    away = machine.seed_dir.with_name("away")
    machine.seed_dir.rename(away)
    mark = len(machine.log)
    by_hand = machine.run(("modules", "--mode", "final"))
    assert "Datasource DataSourceCernVM [seed=" in machine.log[mark:], machine.log[mark:]
    away.rename(machine.seed_dir)
    assert_whole(machine, by_hand, FIRST_BOOT)
    assert (machine.instance_dir / "obj.pkl").read_bytes() == kept.read_bytes()

    assert_whole(machine, machine.boot(), {**FIRST_BOOT, "bootcmd": 2})


#: run by the release under test on a datasource cached in a sandbox: loads
#: it as a later version would, with attributes the pickling version lacked
PROBE = r"""
import json, pickle, sys

from cloudinit_cernvm import DataSourceCernVM as module

found = set()


class Recording(pickle.Unpickler):
    def find_class(self, mod, name):
        found.add(mod + "." + name)
        return super().find_class(mod, name)


with open(sys.argv[1], "rb") as f:
    ds = Recording(f).load()
cls = type(ds)
fresh = cls(ds.sys_cfg, ds.distro, ds.paths)
# what this package's class sets beyond what cloud-init's base class sets
bare = type("Bare", (module.sources.DataSource,), {"dsname": "Bare", "_get_data": lambda s: False})
own = sorted(set(vars(fresh)) - set(vars(bare(ds.sys_cfg, ds.distro, ds.paths))))

# a pickle of a version that had none of them ...
for name in own:
    delattr(ds, name)
older = pickle.dumps(ds)
# ... read by a version whose __init__ sets one more
init = cls.__init__
def later_init(self, *args, **kwargs):
    init(self, *args, **kwargs)
    self.added_later = {"default": True}
cls.__init__ = later_init
loaded = pickle.loads(older)
fresh = cls(ds.sys_cfg, ds.distro, ds.paths)
print(json.dumps({
    "globals": sorted(found),
    "own": own,
    "missing": sorted(set(vars(fresh)) - set(vars(loaded))),
    "defaults": {n: [repr(getattr(loaded, n, "<absent>")), repr(getattr(fresh, n))]
                 for n in [*own, "added_later"]},
    "instance_id": loaded.get_instance_id(),
    "cloud_name": loaded.cloud_name,
    "subplatform": loaded.subplatform,
    "network_config": repr(loaded.network_config),
    "str": str(loaded),
}))
"""


def probe_cache(release: str, pickled: Path, code: Path = sandbox.REPO) -> dict:
    """What PROBE finds in the cache PICKLED under cloud-init RELEASE and CODE."""
    env = {"PYTHONPATH": f"{code}:{sandbox.site_packages(release)}", "PATH": "/usr/bin:/bin",
           "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([str(sandbox.python_for(release)), "-c", PROBE, str(pickled)],
                          capture_output=True, text=True, env=env, check=False,
                          cwd=pickled.parent)
    assert done.returncode == 0, f"cloud-init {release}: {done.stderr[-3000:]}"
    return json.loads(done.stdout)


#: what a cache may name besides cloud-init and the standard library: the
#: datasource's module alone, so that a later version may change or move
#: every other module of the package without making old caches unreadable
CACHE_MODULES = ("cloudinit.", "email.", "collections.", "copyreg.", "builtins.",
                 "cloudinit_cernvm.DataSourceCernVM.")


def test_attributes_an_older_cache_lacks_get_this_versions_defaults(machine, release):
    machine.write_seed("EC2", USER_DATA, META, ucontext=UCONTEXT)
    assert machine.run(sandbox.BOOT_STAGES[0]).ok
    found = probe_cache(release, machine.instance_dir / "obj.pkl")
    assert {"provider", "seed_dir", "_fallback"} <= set(found["own"]), found["own"]
    assert found["missing"] == [], found
    for name, (got, default) in found["defaults"].items():
        assert got == default, f"{name}: {got} (a fresh datasource has {default})"
    assert found["instance_id"] == META["instance-id"]
    # what the methods read from those attributes answers as it would (the
    # cloud name from cloud-init's own cached attribute, which the cache kept)
    assert (found["cloud_name"], found["network_config"]) == ("aws", "None")
    assert found["subplatform"] == "seed-dir (/mnt/.rw/context)"
    assert found["str"] == "DataSourceCernVM [seed=/mnt/.rw/context]"
    stray = [g for g in found["globals"] if not g.startswith(CACHE_MODULES)]
    assert stray == [], f"the cache names classes of other modules: {stray}"
