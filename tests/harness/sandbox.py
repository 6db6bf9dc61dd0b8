"""Run real cloud-init releases in a sandbox that cannot touch the host.

A :class:`Machine` is a directory on the host holding what a machine keeps
across boots (``/etc/cloud``, ``/var/lib/cloud``, ``/var/log``, the scratch
disk ``/mnt/.rw``) plus ``/run``, emptied at every boot. :meth:`Machine.boot`
enters private mount, UTS and network namespaces, builds a copy-on-write
overlay of ``/`` (its writes go to a tmpfs that vanishes with the
namespace), binds the machine's directories into it, optionally fakes the
DMI tree and the kernel command line, and runs the cloud-init stages of one
release, unpacked from Debian's package, inside a ``chroot``. The network
namespace has only loopback: a datasource that tried to reach a metadata
service would fail, and tests would see it.

Used by the tests, ``make demo`` and ``make bench``.
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("CERNVM_CACHE", Path.home() / ".cache" / "cloudinit-cernvm"))
RELEASES_DIR = CACHE / "cloud-init"
RUNNER = Path(__file__).resolve().with_name("runner.py")
VENV_PYTHON = Path(os.environ.get("CERNVM_PYTHON", REPO / ".venv" / "bin" / "python"))

#: the stages of one boot, as systemd runs them on a real machine
BOOT_STAGES: tuple[tuple[str, ...], ...] = (
    ("init", "--local"),
    ("init",),
    ("modules", "--mode", "config"),
    ("modules", "--mode", "final"),
)

#: modules that are safe and fast in a sandbox with no network; tests that
#: need more add them through ``extra_config``
SANDBOX_CONFIG: dict = {
    "network": {"config": "disabled"},
    "cloud_init_modules": ["bootcmd", "write_files", "set_hostname", "update_hostname"],
    "cloud_config_modules": ["runcmd"],
    "cloud_final_modules": [
        "scripts_vendor",
        "scripts_per_once",
        "scripts_per_boot",
        "scripts_per_instance",
        "scripts_user",
        "final_message",
    ],
}

DEFAULT_CMDLINE = "BOOT_IMAGE=/vmlinuz root=/dev/vda1 ro console=ttyS0"


#: ``/proc/partitions`` of a sandboxed machine: no disk. The host's disks,
#: and the loop devices other tests set up for a moment (busybox ``mount`` of
#: an image file attaches one, even when the mount then fails), must not
#: change what ``blkid`` finds inside: the datasource's detection and
#: cloud-init's own disk datasources would differ between runs
NO_PARTITIONS = "major minor  #blocks  name\n\n"

#: the character devices a sandboxed machine has (bound from the host); no
#: block device at all, for the same reason
SANDBOX_DEVICES = ("null", "zero", "full", "random", "urandom", "tty", "console", "ptmx")


def _private_dev_lines() -> list[str]:
    """Shell lines that give the sandbox its own ``/dev``: the character devices
    above, ``pts``, ``shm`` and the ``fd`` links, and nothing the host attaches."""
    return [
        'mount -t tmpfs -o mode=0755,nosuid dev "$root/dev"',
        f"for n in {' '.join(SANDBOX_DEVICES)}; do [ -e \"/dev/$n\" ] || continue;"
        ' : > "$root/dev/$n"; mount --bind "/dev/$n" "$root/dev/$n"; done',
        'mkdir "$root/dev/pts" "$root/dev/shm"',
        'mount --bind /dev/pts "$root/dev/pts"',
        'mount -t tmpfs -o mode=1777 shm "$root/dev/shm"',
        'ln -s /proc/self/fd "$root/dev/fd"',
        'for n in 0:stdin 1:stdout 2:stderr; do ln -s "/proc/self/fd/${n%%:*}" "$root/dev/${n#*:}";'
        " done",
    ]


def version_key(release: str) -> tuple[int, ...]:
    """Order releases numerically (20.4.1 < 22.4.2 < 25.1.4 < 26.2)."""
    return tuple(int(p) for p in release.split(".") if p.isdigit())


def releases() -> list[str]:
    """The cloud-init releases unpacked by ``tools/bootstrap``, oldest first."""
    if not RELEASES_DIR.is_dir():
        return []
    found = [p.name for p in RELEASES_DIR.iterdir() if (p / ".complete").exists()]
    return sorted(found, key=version_key)


def _versions_table() -> list[list[str]]:
    lines = (REPO / "tests" / "cloudinit-versions").read_text().splitlines()
    return [ln.split() for ln in lines if ln.strip() and not ln.startswith("#")]


def wanted_releases() -> list[str]:
    """The releases the project supports (``tests/cloudinit-versions``)."""
    return [row[1] for row in _versions_table()]


def site_packages(release: str) -> Path:
    """Where an unpacked release keeps its Python package ``cloudinit``."""
    path = RELEASES_DIR / release / "usr" / "lib" / "python3" / "dist-packages"
    if not (path / "cloudinit").is_dir():
        raise FileNotFoundError(f"cloud-init {release} is not unpacked under {path}; "
                                "run tools/bootstrap")
    return path


def python_for(release: str) -> Path:
    """The interpreter a release runs on: its own virtualenv where it needs one."""
    for _suite, name, version in _versions_table():
        if name == release:
            own = REPO / f".venv-py{version}" / "bin" / "python"
            if own.exists():
                return own
    return VENV_PYTHON


@dataclass
class StageResult:
    """What one cloud-init command did inside the sandbox."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float


@dataclass
class BootResult:
    """The stages of one boot, in order."""

    stages: list[StageResult] = field(default_factory=list)
    seconds: float = 0.0
    #: ``cloud-init status`` after the stages (when the boot reported)
    status: str = ""
    #: ``cloud-init query v1`` after the stages, parsed (None: no instance data)
    v1: dict | None = None

    def stage(self, *args: str) -> StageResult:
        """The result of the stage run with exactly these arguments."""
        for result in self.stages:
            if result.args == args:
                return result
        raise KeyError(args)

    @property
    def ok(self) -> bool:
        """True when every stage exited 0."""
        return all(s.returncode == 0 for s in self.stages)


@functools.cache
def _base_prefix(python: str) -> str:
    """Where an interpreter's standard library lives (a venv's base Python)."""
    return subprocess.run(
        [python, "-c", "import sys; print(sys.base_prefix)"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()


class Machine:
    """One sandboxed machine running one cloud-init release."""

    def __init__(
        self,
        workdir: Path,
        release: str,
        *,
        extra_config: dict | None = None,
        dmi: dict[str, str] | None = None,
        cmdline: str = DEFAULT_CMDLINE,
        cernvm_config: Path | None = None,
        nics: list[tuple[str, str]] | None = None,
    ) -> None:
        self.dir = Path(workdir)
        #: network interfaces (name, MAC) the machine has, as virtual Ethernet
        #: devices in its network namespace, seen through a sysfs of that namespace; with
        #: them, ``/etc/network`` is kept (``etc-network``) and ifupdown's
        #: programs are there, so that cloud-init's eni renderer is available
        #: and writes ``/etc/network/interfaces.d/50-cloud-init``
        self.nics = list(nics or [])
        self.release = release
        self.release_dir = RELEASES_DIR / release
        if not (self.release_dir / ".complete").exists():
            raise FileNotFoundError(f"cloud-init {release} is not unpacked; run tools/bootstrap")
        self.dmi = dmi
        self.cmdline = cmdline
        #: where the sandboxed cloud-init imports ``cloudinit_cernvm`` from:
        #: the checkout, or another version's tree (upgrade tests switch it
        #: between stages, as a package upgrade would)
        self.code_dir = REPO
        #: addresses put on the namespace's loopback and commands started in
        #: the namespace before the stages (``add_service``)
        self.addresses: list[str] = []
        self.services: list[list[str]] = []
        for name in ("etc-cloud", "var-lib-cloud", "var-log", "run", "mnt-rw", "out", "ns",
                     *(("etc-network",) if self.nics else ())):
            (self.dir / name).mkdir(parents=True, exist_ok=True)
        self._write_config(extra_config or {}, cernvm_config or REPO / "cfg" / "90_cernvm.cfg")

    # --- paths as the machine sees them, from the host ----------------------
    @property
    def seed_dir(self) -> Path:
        """Host path of the machine's ``/mnt/.rw/context`` (the default seed)."""
        return self.dir / "mnt-rw" / "context"

    @property
    def cloud_dir(self) -> Path:
        """Host path of the machine's ``/var/lib/cloud``."""
        return self.dir / "var-lib-cloud"

    @property
    def instance_dir(self) -> Path:
        """Host path of ``/var/lib/cloud/instance`` (a link to the current instance)."""
        link = self.cloud_dir / "instance"
        return self.host_path(os.readlink(link)) if link.is_symlink() else link

    @property
    def run_dir(self) -> Path:
        """Host path of the machine's ``/run`` (emptied at every boot)."""
        return self.dir / "run"

    @property
    def log(self) -> str:
        """The machine's ``/var/log/cloud-init.log``."""
        path = self.dir / "var-log" / "cloud-init.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def host_path(self, path: str) -> Path:
        """Map an absolute path inside the machine to the host, for bound dirs."""
        for inner, outer in self._binds():
            if path == inner or path.startswith(inner + "/"):
                return Path(outer) / path[len(inner) :].lstrip("/")
        raise ValueError(f"{path} is not kept outside the sandbox")

    def write_seed(
        self,
        source: str | None,
        user_data: bytes | str | None,
        meta_data: dict | str | None = None,
        ucontext: str | None = None,
    ) -> Path:
        """Write a seed the way the microboot stage does (0700 / 0600)."""
        seed = self.seed_dir
        seed.mkdir(parents=True, exist_ok=True)
        seed.chmod(0o700)
        items = {
            "source": None if source is None else source + "\n",
            "user-data": user_data,
            "meta-data": json.dumps(meta_data) if isinstance(meta_data, dict) else meta_data,
            "ucontext": ucontext,
        }
        for name, value in items.items():
            if value is None:
                continue
            data = value.encode() if isinstance(value, str) else value
            path = seed / name
            path.write_bytes(data)
            path.chmod(0o600)
        return seed

    def add_service(self, argv: list[str], address: str | None = None) -> None:
        """Run ARGV (from the checkout, on the host's interpreter) inside the
        sandbox's private network namespace at every boot, before the stages.

        ``address`` goes on the namespace's loopback first, so that a fake can
        listen at a cloud's real address (``169.254.169.254``) without any real
        network seeing it. The command must print a line with ``serving`` once
        it listens (``tests.fakes.metadata`` does); it is stopped after the
        stages, and its output is kept in ``out/service-N.log``.
        """
        if address is not None and address not in self.addresses:
            self.addresses.append(address)
        self.services.append(list(argv))

    def service_log(self, number: int = 0) -> str:
        """What service NUMBER printed during the last boot."""
        path = self.dir / "out" / f"service-{number}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def upgrade_cloud_init(self, release: str) -> None:
        """Install another cloud-init release in the machine, as a package
        upgrade between boots does: its own ``/etc/cloud`` files replace the
        old release's, the drop-ins written for the machine stay, and
        ``/var/lib/cloud`` (the instance, its cache) is kept as it is."""
        release_dir = RELEASES_DIR / release
        if not (release_dir / ".complete").exists():
            raise FileNotFoundError(f"cloud-init {release} is not unpacked; run tools/bootstrap")
        etc = self.dir / "etc-cloud"
        shutil.copytree(release_dir / "etc" / "cloud", etc, symlinks=True, dirs_exist_ok=True)
        (etc / "cloud.cfg.d" / "README").unlink(missing_ok=True)
        self.release, self.release_dir = release, release_dir

    # --- running ------------------------------------------------------------
    def boot(
        self, stages: tuple[tuple[str, ...], ...] = BOOT_STAGES, *, report: bool = True
    ) -> BootResult:
        """Boot once: empty ``/run``, then run the stages in order.

        With ``report``, ``cloud-init status`` and ``query v1`` run after the
        stages in the same sandbox session (``result.status``, ``result.v1``).
        """
        shutil.rmtree(self.run_dir)
        self.run_dir.mkdir()
        extra = (("status",), ("query", "v1")) if report else ()
        result = self.run(*stages, *extra)
        if report:
            status, query = result.stages[-2:]
            del result.stages[-2:]
            result.status = status.stdout
            if query.returncode == 0:
                result.v1 = json.loads(query.stdout)
        return result

    def cloud_init(self, *args: str) -> StageResult:
        """Run one cloud-init command (``status``, ``query v1``...) without rebooting."""
        return self.run(tuple(args)).stages[0]

    def query(self, key: str = "v1") -> object:
        """``cloud-init query KEY``, parsed as JSON when it is."""
        result = self.cloud_init("query", key)
        if result.returncode != 0:
            raise RuntimeError(f"cloud-init {self.release} query {key}: {result.stderr.strip()}")
        try:
            return json.loads(result.stdout)
        except ValueError:
            return result.stdout.strip()

    def run(self, *commands: tuple[str, ...]) -> BootResult:
        """Run cloud-init commands in one sandbox session, in order."""
        out = self.dir / "out"
        shutil.rmtree(out)
        out.mkdir()
        script = self._script(tuple(tuple(c) for c in commands))
        started = time.monotonic()
        proc = subprocess.run(
            ["unshare", "--mount", "--uts", "--net", "--propagation", "private",
             "bash", "-c", script],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        result = BootResult(seconds=time.monotonic() - started)
        results = out / "results.json"
        if proc.returncode != 0 or not results.exists():
            raise RuntimeError(
                f"sandbox for cloud-init {self.release} failed ({proc.returncode}): "
                f"{proc.stderr.strip()[-2000:]}"
            )
        for item in json.loads(results.read_text()):
            item["args"] = tuple(item["args"])
            result.stages.append(StageResult(**item))
        return result

    # --- internals ----------------------------------------------------------
    def _binds(self) -> list[tuple[str, str]]:
        d = self.dir
        network = [("/etc/network", str(d / "etc-network"))] if self.nics else []
        return [
            *network,
            ("/etc/cloud", str(d / "etc-cloud")),
            ("/var/lib/cloud", str(d / "var-lib-cloud")),
            ("/var/log", str(d / "var-log")),
            ("/run", str(d / "run")),
            ("/mnt/.rw", str(d / "mnt-rw")),
            ("/sandbox-out", str(d / "out")),
        ]

    def _code_paths(self) -> list[str]:
        """Directories the sandboxed commands run from, outermost first."""
        base = _base_prefix(str(python_for(self.release)))
        found: list[str] = []
        wanted = {str(REPO), str(Path(self.code_dir).resolve()), str(RELEASES_DIR.resolve()), base}
        for path in sorted(wanted, key=len):
            if not any(path == p or path.startswith(p + "/") for p in found):
                found.append(path)
        return found

    def _write_config(self, extra_config: dict, cernvm_config: Path) -> None:
        etc = self.dir / "etc-cloud"
        shutil.rmtree(etc)
        shutil.copytree(self.release_dir / "etc" / "cloud", etc, symlinks=True)
        (etc / "cloud.cfg.d" / "README").unlink(missing_ok=True)
        if cernvm_config.exists():
            shutil.copy(cernvm_config, etc / "cloud.cfg.d" / "90_cernvm.cfg")
        config = {**SANDBOX_CONFIG, **extra_config}
        (etc / "cloud.cfg.d" / "99_sandbox.cfg").write_text(
            "# written by the test sandbox\n" + yaml.safe_dump(config)
        )

    def _service_lines(self) -> list[str]:
        """Shell lines that start the services in the namespace, and stop them
        on exit; each is waited for (at most 10 s) until it says it serves."""
        lines = [f"ip addr add {shlex.quote(a)}/32 dev lo" for a in self.addresses]
        if not self.services:
            return lines
        lines += ["pids=", 'trap \'[ -n "$pids" ] && kill $pids 2>/dev/null; true\' EXIT']
        for n, argv in enumerate(self.services):
            log = shlex.quote(str(self.dir / "out" / f"service-{n}.log"))
            cmd = " ".join(shlex.quote(a) for a in argv)
            lines += [
                f"(cd {shlex.quote(str(REPO))} && exec {shlex.quote(str(VENV_PYTHON))} {cmd})"
                f" >{log} 2>&1 & pids=\"$pids $!\"",
                f"i=0; until grep -q serving {log}; do i=$((i+1));"
                f' [ $i -gt 100 ] && {{ echo "service {n} did not start" >&2; cat {log} >&2;'
                " exit 1; }; sleep 0.1; done",
            ]
        return lines

    def _nic_lines(self, root: Path) -> list[str]:
        """Shell lines that give the machine its interfaces (``nics``): virtual
        Ethernet devices with those MACs, a sysfs of the namespace over the host's
        ``/sys/class/net``, ifupdown's programs and ``/etc/network/interfaces``."""
        if not self.nics:
            return []
        tools = CACHE / "ifupdown" / "sbin"
        if not (tools / "ifup").exists():
            raise FileNotFoundError(f"{tools}/ifup missing; run tools/bootstrap")
        (self.dir / "etc-network" / "interfaces.d").mkdir(parents=True, exist_ok=True)
        (self.dir / "etc-network" / "interfaces").write_text(
            "source /etc/network/interfaces.d/*\nauto lo\niface lo inet loopback\n")
        lines = []
        # vxlan: an Ethernet device whose MAC can be set, in every kernel's
        # default build (dummy is often a module that a container cannot load)
        for number, (name, mac) in enumerate(self.nics, 1):
            lines += [f"ip link add {shlex.quote(name)} type vxlan id {number} dstport 4789",
                      f"ip link set {shlex.quote(name)} address {shlex.quote(mac)}"]
        lines += [
            'mkdir -p "$ns/sysfs"; mount -t sysfs sysfs "$ns/sysfs"',
            'mount --bind "$ns/sysfs/class/net" "$root/sys/class/net"',
            'mount --bind "$ns/sysfs/devices/virtual/net" "$root/sys/devices/virtual/net"',
        ]
        for tool in ("ifup", "ifdown", "ifquery"):
            lines.append(f'cp {shlex.quote(str(tools / tool))} "$root/usr/sbin/{tool}"')
        return lines

    def _script(self, commands: tuple[tuple[str, ...], ...]) -> str:
        """The bash script that builds the sandbox and runs the commands."""
        ns = self.dir / "ns"
        root = ns / "root"
        pythonpath = f"{Path(self.code_dir).resolve()}:{site_packages(self.release)}"
        env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "PYTHONPATH": pythonpath,
            "HOME": "/root",
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        cloud_init = f"{self.release_dir}/usr/bin/cloud-init"
        lines = [
            "set -eu",
            f"ns={shlex.quote(str(ns))}; root={shlex.quote(str(root))}",
            'mount -t tmpfs -o mode=0755 sandbox "$ns"',
            'mkdir -p "$ns/upper" "$ns/work" "$root"',
            'mount -t overlay overlay -o "lowerdir=/,upperdir=$ns/upper,workdir=$ns/work" "$root"',
            'for d in proc sys; do mount --rbind "/$d" "$root/$d"; done',
            *_private_dev_lines(),
            'mount -t tmpfs -o mode=1777 tmp "$root/tmp"',
        ]
        # What the commands run from (the checkout, its virtualenvs, the
        # unpacked releases, the interpreters) must be there at the same
        # paths, even where it lives on another filesystem than / or under
        # /tmp; read-only, so nothing in the sandbox can change it.
        for path in self._code_paths():
            target = f'"$root{path}"'
            quoted = shlex.quote(path)
            lines.append(
                f"mkdir -p {target}; mount --bind {quoted} {target};"
                f" mount -o remount,bind,ro {target}"
            )
        for inner, outer in self._binds():
            target = f'"$root{inner}"'
            lines.append(f"mkdir -p {target}; mount --bind {shlex.quote(outer)} {target}")
        cmdline = self.dir / "cmdline"
        cmdline.write_text(self.cmdline.strip() + "\n")
        lines.append(f'mount --bind {shlex.quote(str(cmdline))} "$root/proc/cmdline"')
        partitions = self.dir / "partitions"
        partitions.write_text(NO_PARTITIONS)
        lines.append(f'mount --bind {shlex.quote(str(partitions))} "$root/proc/partitions"')
        if self.dmi is not None:
            dmi = self.dir / "dmi"
            shutil.rmtree(dmi, ignore_errors=True)
            dmi.mkdir()
            for key, value in self.dmi.items():
                (dmi / key).write_text(value + "\n")
            lines += [
                'mount -t tmpfs -o mode=0755 class "$root/sys/class"',
                'for c in /sys/class/*; do n=${c##*/}; [ "$n" = dmi ] && continue;'
                ' mkdir "$root/sys/class/$n"; mount --rbind "$c" "$root/sys/class/$n"; done',
                'mkdir -p "$root/sys/class/dmi/id"',
                f'mount --bind {shlex.quote(str(dmi))} "$root/sys/class/dmi/id"',
                # A machine with DMI strings is a virtual machine: cloud-init
                # ignores DMI in a container, so the host's container marker
                # is hidden (from the overlay; the host keeps it).
                'rm -f "$root/.dockerenv"',
            ]
        lines += ["hostname cernvm-sandbox", "ip link set lo up", *self._nic_lines(root)]
        lines += self._service_lines()
        python = python_for(self.release)
        job = {"env": env, "argv0": [str(python), cloud_init], "commands": commands}
        (self.dir / "out" / "job.json").write_text(json.dumps(job))
        lines.append(
            f'chroot "$root" {python} {RUNNER} /sandbox-out/job.json /sandbox-out/results.json'
        )
        return "\n".join(lines) + "\n"
