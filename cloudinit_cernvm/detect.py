"""Which cloud this machine runs on, from local evidence only.

The rules live in one table, ``microboot/rules``, read here and by the
microboot stage (``microboot/lib/detect.sh``), with the same meaning: the
table's header describes its format. Keeping one table means that
``cernvm-context detect`` on a booted machine says what microboot decided.

``CERNVM_SYSROOT`` and ``CERNVM_MEDIA_DIR`` give the defaults of ``sysroot``
and ``media_dir``, as for the microboot stage.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

RULES = Path(__file__).with_name("microboot") / "rules"
#: filesystems that context media use; other disks are not looked into
MEDIA_TYPES = ("iso9660", "vfat", "udf")


@dataclass(frozen=True)
class Detection:
    """A recognised provider and the one-line reason for it."""

    provider: str
    evidence: str


@dataclass(frozen=True)
class Condition:
    """One line of the rule table."""

    kind: str
    field: str
    pattern: str


@dataclass(frozen=True)
class Rule:
    """A provider and the conditions that must all hold."""

    provider: str
    conditions: tuple[Condition, ...]


def load_rules(path: Path = RULES) -> list[Rule]:
    """Parse the rule table; ``+`` lines add a condition to the rule above."""
    rules: list[Rule] = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 3)
        if len(parts) != 4:
            raise ValueError(f"{path}:{number}: needs PROVIDER KIND FIELD PATTERN")
        provider, kind, field, pattern = parts
        cond = Condition(kind, field, pattern)
        if provider == "+":
            if not rules:
                raise ValueError(f"{path}:{number}: '+' with no rule above")
            last = rules[-1]
            rules[-1] = Rule(last.provider, (*last.conditions, cond))
        else:
            rules.append(Rule(provider, (cond,)))
    return rules


def _first_line(path: Path) -> str | None:
    """The first line of a file, blanks around it cut (as sh ``read``);
    None when it cannot be read or is empty."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            line = f.readline()
    except OSError:
        return None
    return line.rstrip("\n").strip(" \t") if line else None


class _Evidence:
    """Reads the machine once per detection; mounts disks only if asked."""

    def __init__(self, sysroot: str, media_dir: str | None) -> None:
        self.root = Path(sysroot)
        self.media_dir = media_dir
        self._media: list[tuple[str, str, str]] | None = None
        self._mounts: dict[str, str | None] = {}

    # -- kinds -----------------------------------------------------------
    def check(self, cond: Condition) -> str | None:
        """The evidence line if COND holds, else None."""
        if cond.kind == "cmdline":
            return self.cmdline(cond.field, cond.pattern)
        if cond.kind == "dmi":
            return self.file(self.root / "sys/class/dmi/id" / cond.field, cond.pattern,
                             f"DMI {cond.field}")
        if cond.kind == "hypervisor":
            return self.file(self.root / "sys/hypervisor" / cond.field, cond.pattern,
                             f"/sys/hypervisor/{cond.field}")
        if cond.kind == "label":
            return self.label(cond.field, cond.pattern)
        raise ValueError(f"rules: unknown kind {cond.kind}")

    def cmdline(self, keys: str, pattern: str) -> str | None:
        text = _first_line(self.root / "proc/cmdline") or ""
        wanted = keys.split(",")
        for word in text.split():
            if "=" not in word:
                continue
            key, value = word.split("=", 1)
            if key not in wanted:
                continue
            value = value.split(";", 1)[0].split(",", 1)[0].lower()
            if fnmatchcase(value, pattern.lower()):
                return f"kernel command line has {word}"
        return None

    @staticmethod
    def file(path: Path, pattern: str, name: str) -> str | None:
        value = _first_line(path)
        if value is None or not fnmatchcase(value, pattern):
            return None
        return f'{name} is "{value}"'

    def label(self, label_glob: str, inside: str) -> str | None:
        for label, device, fstype in self.media():
            if not fnmatchcase(label, label_glob):
                continue
            if inside != "-":
                top = self.mount(device, fstype)
                if top is None or not os.path.lexists(os.path.join(top, inside)):
                    continue
                return f'a disk labelled "{label}" holds {inside}'
            return f'a disk labelled "{label}"'
        return None

    # -- disks -----------------------------------------------------------
    def media(self) -> list[tuple[str, str, str]]:
        """(label, device or directory, type) of each disk, in a stable order."""
        if self._media is None:
            self._media = list(self._scan())
        return self._media

    def _scan(self) -> Iterator[tuple[str, str, str]]:
        if self.media_dir is not None:
            top = Path(self.media_dir)
            if top.is_dir():
                for entry in sorted(top.iterdir()):
                    if entry.is_dir():
                        yield entry.name, str(entry), "dir"
            return
        blkid = shutil.which("blkid")
        if blkid is None:
            return
        try:
            # no cache (-c /dev/null): the cache also lists image files that
            # blkid was once asked about, and disks long gone
            out = subprocess.run([blkid, "-c", "/dev/null", "-o", "export"],
                                 capture_output=True, text=True, timeout=10,
                                 check=False).stdout
        except (OSError, subprocess.TimeoutExpired):
            return
        for block in out.split("\n\n"):
            tags = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
            if tags.get("TYPE") in MEDIA_TYPES and tags.get("DEVNAME", "").startswith("/dev/"):
                yield tags.get("LABEL", ""), tags["DEVNAME"], tags["TYPE"]

    def mount(self, device: str, fstype: str) -> str | None:
        """DEVICE's directory: mounted read-only on first use (root only)."""
        if fstype == "dir":
            return device
        if device not in self._mounts:
            point = tempfile.mkdtemp(prefix="cernvm-detect-")
            done = subprocess.run(["mount", "-r", "-t", fstype, device, point],
                                  capture_output=True, timeout=30, check=False)
            if done.returncode != 0:
                os.rmdir(point)
                point = None
            self._mounts[device] = point
        return self._mounts[device]

    def release(self) -> None:
        """Unmount what ``mount`` mounted."""
        for point in self._mounts.values():
            if point is not None:
                subprocess.run(["umount", point], capture_output=True, timeout=30, check=False)
                os.rmdir(point)
        self._mounts.clear()


def detect(sysroot: str | None = None, media_dir: str | None = None,
           rules: Path = RULES) -> Detection | None:
    """The provider this machine shows, by the first rule that holds, or None.

    ``sysroot`` prefixes ``/sys`` and ``/proc/cmdline`` (default
    ``$CERNVM_SYSROOT`` or ``/``); ``media_dir`` holds one directory per disk,
    named by its label (default ``$CERNVM_MEDIA_DIR``; unset: the machine's
    own disks, found with ``blkid`` and mounted read-only when a rule needs
    to look inside).
    """
    if sysroot is None:
        sysroot = os.environ.get("CERNVM_SYSROOT") or "/"
    if media_dir is None:
        media_dir = os.environ.get("CERNVM_MEDIA_DIR") or None
    evidence = _Evidence(sysroot, media_dir)
    try:
        for rule in load_rules(rules):
            reasons = []
            for cond in rule.conditions:
                reason = evidence.check(cond)
                if reason is None:
                    break
                reasons.append(reason)
            else:
                return Detection(rule.provider, " and ".join(reasons))
        return None
    finally:
        evidence.release()
