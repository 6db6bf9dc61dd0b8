"""Read the seed the microboot stage left on the scratch disk.

Plain functions over a directory, no cloud-init: the datasource, the command
line and the tests share them. The layout is the contract between the two
boot stages (DESIGN.md): ``source`` (required: without it the directory is
no seed), ``user-data`` (required, may be empty: the provider had none),
``meta-data`` (JSON, optional: older µCernVM writes none), ``ucontext``,
``network-data`` (optional, the provider's network description) and the
provider's vendor-data (``vendor-data``, ``vendor-data2``: OpenStack's JSON,
optional). ``source`` alone, without ``user-data``, is the stage's marker
that it recognised the provider but could not fetch its data
(:class:`StageFailed`): the datasource then falls back to cloud-init's own
datasource for the provider (``fallback.py``).

Reading never changes the seed: it is the raw record of what the provider
gave, kept for ``cernvm-context show`` and for debugging. Only its modes are
changed, by :func:`tighten_modes`, which the datasource calls: seeds of
existing µCernVM images are readable by all.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat

from cloudinit_cernvm import DEFAULT_SEED_DIR, providers, safefile, ucernvm

#: user-data larger than this is refused: no cloud takes more than a few
#: hundred KiB, so a bigger file is a broken seed, not a context
MAX_USER_DATA = 16 * 1024 * 1024
#: meta-data and ucontext are small; a cap keeps a broken seed from costing
MAX_SMALL_FILE = 1024 * 1024
#: the seed's vendor-data files and what the provider calls them
VENDOR_FILES = {"vendor-data": "vendor_data.json", "vendor-data2": "vendor_data2.json"}

#: deepest nesting of meta-data taken: the clouds' own go 4 or 5 levels deep,
#: and cloud-init walks meta-data recursively (instance-data.json), so a
#: deeper one would fail in cloud-init after this module let it through
MAX_META_DEPTH = 32

#: DMI UUIDs that firmware uses as placeholders: never an instance's identity
BOGUS_UUIDS = frozenset(
    {
        "00000000-0000-0000-0000-000000000000",
        "ffffffff-ffff-ffff-ffff-ffffffffffff",
        "03000200-0400-0500-0006-000700080009",
    }
)


#: stands for meta-data too deeply nested to be parsed at all
_TOO_DEEP = object()


class NoSeed(Exception):
    """The directory holds no seed (absent, or no ``source`` file)."""


class StageFailed(NoSeed):
    """``source`` without ``user-data``: the stage recognised a provider and failed.

    A kind of :class:`NoSeed` (there is no context to use), which says more:
    the provider the stage named (canonical spelling, or as written), and
    what the stage's ``failure`` line says: ``kind`` (``silent``,
    ``unavailable``, ``unreachable``, ``slow``, ``cut``, ``refused``,
    ``deadline``, ``none``; "" when there is no such line) and ``why``.
    """

    def __init__(self, message: str, provider: str, kind: str = "", why: str = "") -> None:
        super().__init__(message)
        self.provider = provider
        self.kind = kind
        self.why = why


#: the longest ``failure`` line shown (the stage writes one short line)
MAX_FAILURE_SHOWN = 200


class SeedError(Exception):
    """The directory is a seed, but it cannot be used (one-line reason)."""


class Seed:
    """What the microboot stage saved, read and checked.

    A plain class, as are the other records of the boot path: a dataclass
    generates its methods with ``exec`` when its module is imported, which
    costs every cloud-init stage that imports it.
    """

    __slots__ = ("meta_data", "network_data", "path", "problems", "provider", "ucontext_text",
                 "user_data", "vendor_data", "vendor_raw")

    def __init__(self, path: str, provider: str, user_data: bytes,
                 meta_data: dict | None = None, ucontext_text: str = "",
                 problems: list[str] | None = None,
                 vendor_raw: dict[str, bytes] | None = None,
                 vendor_data: dict[str, object] | None = None,
                 network_data: bytes | None = None) -> None:
        self.path = path
        self.provider = provider
        self.user_data = user_data
        self.meta_data = {} if meta_data is None else meta_data
        self.ucontext_text = ucontext_text
        self.problems = [] if problems is None else problems
        #: ``network-data`` as the provider gave it (None: the seed has none)
        self.network_data = network_data
        #: the vendor-data files the seed has (VENDOR_FILES' names), as given
        self.vendor_raw = {} if vendor_raw is None else vendor_raw
        #: those of them that are valid JSON, parsed (a dict, list or str)
        self.vendor_data = {} if vendor_data is None else vendor_data

    @property
    def known_provider(self) -> bool:
        """True when ``source`` names a provider this project knows."""
        return self.provider in providers.CLOUD_NAMES

    @property
    def cloud_name(self) -> str:
        """The provider in cloud-init's spelling, ``unknown`` if unknown."""
        return providers.CLOUD_NAMES.get(self.provider, "unknown")

    @property
    def ucontext(self) -> dict[str, str]:
        """The ``_UCONTEXT_KEY=value`` settings µCernVM saved, as a dict."""
        return ucernvm.parse_ucontext(self.ucontext_text)

    def digest(self) -> str:
        """A digest of what identifies the context: provider, user-data, meta-data.

        Used as the instance id where neither meta-data nor DMI gives one, so
        that the same seed on the next boot is the same instance and a new
        context is a new instance.
        """
        h = hashlib.sha256()
        h.update(self.provider.encode() + b"\0")
        h.update(self.user_data + b"\0")
        h.update(json.dumps(self.meta_data, sort_keys=True).encode())
        return h.hexdigest()


def read_seed(path: str = DEFAULT_SEED_DIR) -> Seed:
    """Read the seed in ``path``.

    Raises :class:`NoSeed` when there is none (:class:`StageFailed` when
    ``source`` is there without ``user-data``), :class:`SeedError` when the
    seed cannot be used (its user-data is missing or unreadable: using an
    empty one instead would mark the instance as contextualized with nothing).
    A seed that others could have written is refused too (see
    :func:`_check_trust`). Lesser faults (unknown provider, bad meta-data)
    are listed in ``Seed.problems`` and the rest is used.
    """
    source_file = os.path.join(path, "source")
    if not os.path.isdir(path):
        raise NoSeed(f"no seed directory {path}")
    if not os.path.lexists(source_file):
        raise NoSeed(f"{path} has no 'source' file: not a seed")
    problems: list[str] = []
    _check_trust(path)
    try:
        raw_source = _read(source_file, MAX_SMALL_FILE)
    except OSError as err:
        raise SeedError(f"cannot read {source_file}: {_why(err)}") from None
    name = raw_source.decode("utf-8", "replace").strip()
    provider = providers.canonical(name) if name else None
    if provider is None:
        provider = name or "unknown"
        problems.append(
            f"{source_file}: unknown provider {name!r}; known: {', '.join(providers.NAMES)}"
        )

    user_data_file = os.path.join(path, "user-data")
    if not os.path.lexists(user_data_file):
        kind, why = _failure(path)
        said = f": {kind}: {why}" if why else ""
        raise StageFailed(f"the microboot stage recognised {_shown(provider)} but fetched no "
                          f"user-data ({source_file} without user-data{said})",
                          provider, kind, why)
    try:
        user_data = _read(user_data_file, MAX_USER_DATA)
    except OSError as err:
        raise SeedError(f"cannot read {user_data_file}: {_why(err)}") from None

    meta_data = _read_meta_data(os.path.join(path, "meta-data"), problems)
    ucontext_text = _read_optional_text(os.path.join(path, "ucontext"), problems)
    network_data = _read_optional_bytes(os.path.join(path, "network-data"), problems)
    vendor_raw, vendor_data = _read_vendor_data(path, problems)
    return Seed(path, provider, user_data, meta_data, ucontext_text, problems,
                vendor_raw, vendor_data, network_data=network_data)


def read_ucontext(path: str = DEFAULT_SEED_DIR) -> dict[str, str]:
    """The settings of the seed's ``ucontext`` alone ({} when it has none).

    For the ``text/ucernvm`` part-handler, which compares them with the
    user-data's: it need not read the user-data (up to 16 MiB) again.
    Raises :class:`SeedError` when the file is there but cannot be read.
    """
    problems: list[str] = []
    text = _read_optional_text(os.path.join(path, "ucontext"), problems)
    if problems:
        raise SeedError(problems[0])
    return ucernvm.parse_ucontext(text)


def instance_id(seed: Seed, dmi_uuid: str | None) -> str:
    """The instance id: from meta-data, else the DMI UUID, else the seed digest."""
    iid = seed.meta_data.get("instance-id")
    if isinstance(iid, str) and iid.strip():
        return iid.strip()
    if dmi_uuid and dmi_uuid.strip().lower() not in BOGUS_UUIDS:
        return dmi_uuid.strip().lower()
    return "cernvm-" + seed.digest()[:20]


def _read(path: str, limit: int) -> bytes:
    """Read a regular file of at most ``limit`` bytes (OSError otherwise).

    Never blocks and never follows a symbolic link (``safefile``): a FIFO
    or a device put where a seed file belongs would otherwise hang the boot
    (and ``cernvm-context show``) on ``open()``.
    """
    return safefile.read_regular(path, limit)


def _failure(path: str) -> tuple[str, str]:
    """The marker's ``failure`` line as (kind, why); ("", "") when there is none
    or it cannot be read (an older stage writes none)."""
    try:
        raw = _read(os.path.join(path, "failure"), MAX_SMALL_FILE)
    except OSError:
        return "", ""
    line = " ".join(raw.decode("utf-8", "replace").split("\n", 1)[0].split())
    kind, sep, why = line.partition(": ")
    if not sep or not kind.isalpha():
        kind, why = "", line
    return kind[:20], why[:MAX_FAILURE_SHOWN]


def _shown(name: str) -> str:
    """A provider name from ``source`` for a message: bounded, one line."""
    name = " ".join(name.split())
    return repr(name[:40]) if providers.canonical(name) is None else name


def _why(err: OSError) -> str:
    """An OSError as a short reason, without the path repeated."""
    return err.strerror or str(err)


def _read_optional_text(path: str, problems: list[str]) -> str:
    if not os.path.lexists(path):
        return ""
    try:
        return _read(path, MAX_SMALL_FILE).decode("utf-8", "replace")
    except OSError as err:
        problems.append(f"cannot read {path}: {_why(err)}; ignored")
        return ""


def _read_optional_bytes(path: str, problems: list[str]) -> bytes | None:
    """An optional file's bytes; None when it is not there (the usual case) or
    cannot be read (a problem)."""
    if not os.path.lexists(path):
        return None
    try:
        return _read(path, MAX_SMALL_FILE)
    except OSError as err:
        problems.append(f"cannot read {path}: {_why(err)}; ignored")
        return None


def _read_meta_data(path: str, problems: list[str]) -> dict:
    text = _read_optional_text(path, problems)
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as err:
        problems.append(f"{path}: not valid JSON ({err}); ignored")
        return {}
    except RecursionError:  # the decoder recurses per level
        data = _TOO_DEEP
    if data is _TOO_DEEP or depth_beyond(data, MAX_META_DEPTH):
        problems.append(f"{path}: nested more than {MAX_META_DEPTH} levels deep; ignored")
        return {}
    if not isinstance(data, dict):
        problems.append(f"{path}: not a JSON object; ignored")
        return {}
    keys = data.get("public-keys")
    if isinstance(keys, str):
        data["public-keys"] = [k for k in keys.splitlines() if k.strip()]
    elif keys is not None and not (
        isinstance(keys, list) and all(isinstance(k, str) for k in keys)
    ):
        problems.append(f"{path}: 'public-keys' is not a list of strings; ignored")
        del data["public-keys"]
    for key in ("instance-id", "local-hostname", "availability-zone", "region"):
        if key in data and not isinstance(data[key], str):
            problems.append(f"{path}: {key!r} is not a string; ignored")
            del data[key]
    return data


def _read_vendor_data(path: str, problems: list[str]) -> tuple[dict[str, bytes],
                                                               dict[str, object]]:
    """The seed's vendor-data files, raw and parsed.

    OpenStack's vendor_data.json is JSON whose top is an object, a list or a
    string (what cloud-init's own OpenStack reader takes); a file that is not
    is one problem and is not used, but stays in the seed (``show``, a bug
    report). A blank file is no vendor-data.
    """
    raw: dict[str, bytes] = {}
    parsed: dict[str, object] = {}
    for name in VENDOR_FILES:
        file = os.path.join(path, name)
        if not os.path.lexists(file):
            continue
        try:
            data = _read(file, MAX_USER_DATA)
        except OSError as err:
            problems.append(f"cannot read {file}: {_why(err)}; no vendor-data from it")
            continue
        raw[name] = data
        if not data.strip():
            continue
        try:
            value = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as err:
            why = f"not valid JSON ({str(err).splitlines()[0][:100]})"
        except RecursionError:
            why = "nested too deep"
        else:
            if isinstance(value, (dict, list, str)):
                parsed[name] = value
                continue
            why = "not a JSON object, list or string"
        problems.append(f"{file}: {why}; not used (the file is kept)")
    return raw, parsed


def depth_beyond(data: object, limit: int) -> bool:
    """Whether lists and objects in ``data`` nest deeper than ``limit`` (no recursion)."""
    stack: list[tuple[object, int]] = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return True
            values = item.values() if isinstance(item, dict) else item
            stack.extend((v, depth + 1) for v in values if isinstance(v, (dict, list)))
    return False


def _check_trust(path: str) -> None:
    """Refuse a seed that someone but its owner could have changed.

    The seed decides what runs as root. A directory or file writable by its
    group or by others, or owned by another user than root or the reader,
    may hold anybody's user-data, so it is not used. Being *readable* by
    others is not a reason to refuse: every seed that µCernVM images wrote
    is 0755/0644 (no umask in the initramfs); :func:`tighten_modes` closes
    those.
    """
    names = [""]
    try:
        names += sorted(os.listdir(path))
    except OSError as err:
        raise SeedError(f"cannot list {path}: {_why(err)}") from None
    owners = {0, os.geteuid()}
    for name in names:
        target = os.path.join(path, name) if name else path
        try:
            st = os.lstat(target)
        except OSError:
            continue
        if stat.S_ISLNK(st.st_mode):
            continue  # never followed: reading refuses links on its own
        if st.st_mode & 0o022:
            raise SeedError(f"{target} is mode {stat.S_IMODE(st.st_mode):04o}: writable by "
                            "others, so anybody could have written the context; make it "
                            "0700 (files 0600) and owned by root")
        if st.st_uid not in owners:
            raise SeedError(f"{target} is owned by uid {st.st_uid}, not root: "
                            "not trusted with the context")


def tighten_modes(path: str) -> str | None:
    """Make the seed private: directory 0700, its regular files 0600.

    The seed carries passwords and keys; seeds of existing µCernVM images
    are 0755/0644. Symbolic links and other special files are left alone and
    nothing is followed: modes are changed through descriptors opened with
    ``O_NOFOLLOW``. Returns what was changed, for one INFO line, or None.
    Errors are left to the caller's reading, which reports what it cannot
    read.
    """
    changed: list[str] = []
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        dfd = os.open(path, flags | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        _tighten_fd(dfd, 0o700, "directory", changed)
        for name in sorted(os.listdir(dfd)):
            try:
                fd = os.open(name, flags, dir_fd=dfd)
            except OSError:
                continue  # a link or a device node: not ours to change
            try:
                if stat.S_ISREG(os.fstat(fd).st_mode):
                    _tighten_fd(fd, 0o600, name, changed)
            finally:
                os.close(fd)
    except OSError:
        pass
    finally:
        os.close(dfd)
    return ", ".join(changed) or None


def _tighten_fd(fd: int, want: int, what: str, changed: list[str]) -> None:
    mode = stat.S_IMODE(os.fstat(fd).st_mode)
    if mode & 0o077:
        os.fchmod(fd, want)
        changed.append(f"{what} {mode:04o} -> {want:04o}")
