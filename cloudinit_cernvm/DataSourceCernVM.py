"""cloud-init datasource ``CernVM``: the seed the microboot stage saved.

The microboot stage recognised the cloud and fetched the user-data once;
this datasource only reads what it left on the scratch disk (``seed.py``),
turns old-syntax user-data into MIME (``userdata.py``) and reports it to
cloud-init. It never goes to the network, so it is found in the local stage;
the user-data is consumed in the network stage by default, because amiconfig
plugins need the network (``dsmode``).

Without a seed (or with the stage's marker that it failed: ``source`` alone,
``seed.StageFailed``), it recognises the provider from local evidence
(``detect.py``, the stage's own rule table) and hands over to cloud-init's
own datasource for that provider only (``fallback.py``): the user-data is
still read, converted from old syntax and handled by the part-handlers.
Only plain data of the delegate is kept, so unpickling never imports it.
A delegate that needs the network runs in the network stage
(:class:`DataSourceCernVMNet`); the local class declines for it.

Found through ``datasource_pkg_list: [ cloudinit_cernvm ]``; cloud-init's
loader needs this module name. Only APIs that exist in cloud-init 20.4 to
26.x are used.

Every later cloud-init process (network stage, both module stages) imports
this module again to unpickle the cached datasource, without reading the
seed: ``seed`` and ``userdata`` (dataclasses, regular expressions) are
imported only where the seed is read, which saves each of those processes
the import (about 0.4 s of a 26 s cloud-init start under qemu's emulation).
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from cloudinit import sources

from cloudinit_cernvm import DEFAULT_SEED_DIR, providers

if TYPE_CHECKING:  # the module itself is imported only where a seed is read
    from cloudinit_cernvm.seed import Seed

LOG = logging.getLogger(__name__)

#: MIME nested deeper than ``mime_read.MAX_MIME_DEPTH`` is not converted but
#: given to cloud-init as it is, up to this depth: every supported release
#: reads it (tests/cloudinit/test_hostile_seed.py); deeper, cloud-init's own
#: parser fails with a RecursionError and the init stage with it
MAX_RAW_MIME_DEPTH = 100

#: where the handler shim lives in cloud-init's handlers directory
HANDLER_SHIM_NAME = "cernvm_handlers.py"


class DataSourceCernVM(sources.DataSource):
    """The seed of the microboot stage, read in the local stage."""

    dsname = "CernVM"

    # µCernVM settings may carry credentials (cernvm_inject): keep them out
    # of the world-readable instance-data.json.
    sensitive_metadata_keys = (*sources.DataSource.sensitive_metadata_keys, "ucontext")

    #: the stage this class runs in: which fallback delegates it may run
    fallback_stage = providers.LOCAL_STAGE

    def __init__(self, sys_cfg, distro, paths, ud_proc=None):
        super().__init__(sys_cfg, distro, paths, ud_proc)
        self.seed_dir = str(self.ds_cfg.get("seed_dir") or DEFAULT_SEED_DIR)
        self.provider: str | None = None
        #: plain data of a fallback boot (None: the seed was read); see _take_over
        self._fallback: dict | None = None
        #: cloud-init's network config from the seed's network-data (None: none)
        self._seed_network: dict | None = None

    def __str__(self) -> str:
        return f"{super().__str__()} [seed={self.seed_dir}]"

    def __setstate__(self, state: dict) -> None:
        """Restore the cached datasource and fill in what an older cache lacks.

        cloud-init's datasource restores through its own ``__setstate__``,
        which calls :meth:`_unpickle` (22.4 and later; in 20.4 only its Distro
        has that mixin): where the base class has none, this does both.
        """
        restore = getattr(super(), "__setstate__", None)
        if restore is not None:
            restore(state)
            return
        self.__dict__.update(state)
        self._unpickle(0)

    def _unpickle(self, ci_pkl_version: int) -> None:
        """Give every attribute that the cache lacks the value a new datasource has.

        The next stage, and the first stage of the next boot, read the
        datasource an earlier version of this package (or of cloud-init)
        cached in ``obj.pkl``. Whatever ``__init__`` sets now, including what
        later versions add to it, comes from a datasource built here from the
        cached configuration, so no attribute has to be listed; what the cache
        holds is kept. A datasource that cannot be built leaves the cache as
        it was (the methods then find their defaults with ``getattr``).
        """
        base = getattr(super(), "_unpickle", None)
        if base is not None:  # cloud-init's own fixes of its attributes first
            base(ci_pkl_version)
        cls = type(self)
        try:
            fresh = cls.__new__(cls)
            cls.__init__(fresh, self.sys_cfg, self.distro, self.paths,
                         ud_proc=getattr(self, "ud_proc", None))
        except Exception as err:  # unpickling must never fail the stage
            LOG.debug("CernVM: cached datasource not completed: %s: %s",
                      type(err).__name__, _redacted(err))
            return
        added = [name for name in vars(fresh) if name not in self.__dict__]
        for name in added:
            setattr(self, name, getattr(fresh, name))
        if added:
            LOG.debug("CernVM: cached datasource completed with defaults: %s",
                      ", ".join(sorted(added)))

    def ds_detect(self) -> bool:
        """Always: with no seed, ``_get_data`` recognises the provider (cloud-init
        23.4+ asks this first; detecting here too would read the disks twice)."""
        return True

    def _get_data(self) -> bool:
        try:
            return self._read_seed()
        except Exception as err:  # a datasource must never break the boot
            LOG.warning("CernVM: seed %s not used: %s: %s", self.seed_dir,
                        type(err).__name__, _redacted(err))
            return False

    def _read_seed(self) -> bool:
        from cloudinit_cernvm import seed as seedlib  # deferred: see the module doc

        try:
            seed = seedlib.read_seed(self.seed_dir)
        except seedlib.NoSeed as err:  # StageFailed too
            return self._fall_back(err)
        except seedlib.SeedError as err:
            LOG.warning("CernVM: seed not used: %s", _redacted(err))
            return False
        for problem in seed.problems:  # they may quote the seed's files
            LOG.warning("CernVM: %s", _redacted(problem))
        tightened = seedlib.tighten_modes(self.seed_dir)
        if tightened:  # every seed of an existing µCernVM image: not the user's fault
            LOG.info("CernVM: seed %s was readable by others; made private: %s",
                     self.seed_dir, tightened)

        if seed.provider == "NoCloud":
            from cloudinit_cernvm.nocloud import merge_raw_meta  # deferred: NoCloud only

            seed.meta_data = merge_raw_meta(seed.meta_data)
        meta_data = dict(seed.meta_data)
        meta_data["instance-id"] = seedlib.instance_id(seed, _dmi_uuid())
        self.metadata = meta_data
        self.provider = seed.provider
        self.userdata_raw = _normalize(seed.user_data)
        self._take_vendor_data(seed)
        self._crawled_metadata = {
            "meta-data": meta_data,
            "provider": seed.provider,
            "seed-dir": self.seed_dir,
            "ucontext": seed.ucontext,
        }
        self.dsmode = self._determine_dsmode(
            [meta_data.get("dsmode"), self.ds_cfg.get("dsmode")]
        )
        self._seed_network = self._network_from_seed(seed)
        self._restore_handler_shim()
        LOG.info(
            "CernVM: seed %s: provider %s, instance %s, %d bytes of user-data%s",
            self.seed_dir, seed.provider if seed.known_provider else _redacted(seed.provider),
            meta_data["instance-id"], len(seed.user_data),
            "".join(f", {len(raw)} bytes of {name}" for name, raw in seed.vendor_raw.items()),
        )
        return True

    def _network_from_seed(self, seed) -> dict | None:
        """The seed's network-data as cloud-init's network config (``network.py``),
        computed here, in the stage that reads the seed (the local one), where
        cloud-init applies it. Not computed when the system config turns
        network configuration off (cloud-init would not apply it)."""
        from cloudinit_cernvm import fallback  # deferred: see the module doc

        if seed.network_data is None or fallback.network_config_disabled(self.sys_cfg):
            return None
        from cloudinit_cernvm import network  # deferred: seeds with network-data only

        config = network.network_config(seed.provider, seed.network_data,
                                        os.path.join(self.seed_dir, "network-data"),
                                        self.distro, self.sys_cfg)
        if config is not None:
            LOG.info("CernVM: network config version %s from %s's network-data",
                     config.get("version"), seed.provider)
        return config

    def _take_vendor_data(self, seed: Seed) -> None:
        """The provider's vendor-data, as cloud-init's own OpenStack and
        ConfigDrive datasources hand it over (``convert_vendordata``: the
        ``cloud-init`` item of the JSON object, or the list or string), so
        that cloud-init's ``vendor_data``/``vendor_data2`` switches and its
        order (user-data over vendor-data2 over vendor-data) apply. Bad
        content is one warning and no vendor-data; the seed keeps the file.
        """
        self.vendordata_raw = _vendordata(seed, "vendor-data")
        if hasattr(self, "vendordata2_raw"):  # cloud-init 21.4+
            self.vendordata2_raw = _vendordata(seed, "vendor-data2")
        elif seed.vendor_data.get("vendor-data2"):
            LOG.info("CernVM: %s/vendor-data2 not handed over: this cloud-init reads no "
                     "vendor-data2 (21.4 and later do)", self.seed_dir)

    def activate(self, cfg, is_new_instance):
        """On Azure, the ready report to the wireserver, once per instance
        (``azure_ready``: cloud-init calls this in the network stage)."""
        super().activate(cfg, is_new_instance)
        fallen_back = getattr(self, "_fallback", None) or {}  # older pickles lack it
        if self.provider == "Azure" and not fallen_back.get("reported-ready"):
            from cloudinit_cernvm import azure_ready  # deferred: Azure only

            records = os.path.join(self.paths.get_ipath() or self.paths.cloud_dir, "cernvm")
            azure_ready.report_once(records, self.ds_cfg)

    def _fall_back(self, why: Exception) -> bool:
        """No seed: cloud-init's own datasource for the provider this machine shows.

        One warning says why the seed was missing and what was done instead;
        a machine that shows no provider is declined quietly, as before (the
        marker of a failed stage is worth a warning even then).
        """
        from cloudinit_cernvm import detect, fallback  # deferred: see the module doc
        from cloudinit_cernvm import seed as seedlib

        failed = isinstance(why, seedlib.StageFailed)
        reason = _redacted(why)
        # what nothing can fix is said once, by the network stage, the last to look
        last = self.fallback_stage == providers.NETWORK_STAGE
        found = detect.detect()
        if found is None:
            if failed and last:
                LOG.warning("CernVM: %s; this machine shows no provider either: "
                            "booting without user-data", reason)
            else:
                LOG.info("CernVM: %s; no provider recognised: nothing to fall back to", reason)
            return False
        seen = f"provider {found.provider} ({found.evidence})"
        delegate = fallback.delegate_for(found.provider)
        if delegate is None:
            log = LOG.warning if last else LOG.info
            log("CernVM: %s; %s: cloud-init has no datasource that reads its "
                "context: booting without user-data", reason, seen)
            return False
        if delegate.stage != self.fallback_stage:
            LOG.info("CernVM: %s; %s: cloud-init's %s datasource reads it in the %s stage",
                     reason, seen, delegate.dsname, delegate.stage)
            return False
        LOG.info("CernVM: %s; %s: falling back to cloud-init's %s datasource",
                 reason, seen, delegate.dsname)
        kind = why.kind if failed else ""
        sys_cfg = fallback.delegate_config(self.sys_cfg, delegate.dsname, kind)
        if sys_cfg is not self.sys_cfg:
            LOG.info("CernVM: the microboot stage found the service silent: cloud-init's %s "
                     "datasource waits at most %s s", delegate.dsname,
                     sys_cfg["datasource"][delegate.dsname].get("max_wait"))
        limit = fallback.delegate_limit(self.ds_cfg, kind)
        network_off = fallback.network_config_disabled(self.sys_cfg)
        try:
            # in a child process, not get_data(): the whole reading is bounded
            # (a stuck thread of the delegate dies with the child), and
            # nothing of the delegate is persisted, only what it read
            reading = fallback.read_in_child(
                lambda: _delegate_reading(delegate, sys_cfg, self.distro, self.paths,
                                          network_off),
                limit)
        except fallback.DelegateTimeout as err:
            LOG.warning("CernVM: %s; %s: cloud-init's %s datasource %s: booting without "
                        "user-data", reason, seen, delegate.dsname, err)
            return False
        except fallback.DelegateFailed as err:  # the delegate's fault must not break the boot
            LOG.warning("CernVM: %s; %s: cloud-init's %s datasource failed: %s",
                        reason, seen, delegate.dsname, _redacted(err))
            return False
        if reading is None:
            LOG.warning("CernVM: %s; %s: cloud-init's %s datasource found no data either: "
                        "booting without user-data", reason, seen, delegate.dsname)
            return False
        self._take_over(reading, found.provider, found.evidence, reason)
        LOG.warning("CernVM: %s, so the microboot stage did not do its job; %s: the context "
                    "was read by cloud-init's %s datasource instead (%s)", reason, seen,
                    delegate.dsname, self._fallback["subplatform"])
        return True

    def _take_over(self, reading: dict, provider: str, evidence: str, reason: str) -> None:
        """Keep what the delegate read (:func:`_delegate_reading`), and convert its user-data."""
        self.metadata = reading["meta-data"]
        self.provider = provider
        self.userdata_raw = _normalize(_as_bytes(reading["user-data"]))
        self.vendordata_raw = reading["vendor-data"]
        if "vendor-data2" in reading and hasattr(self, "vendordata2_raw"):  # 21.4+
            self.vendordata2_raw = reading["vendor-data2"]
        self.dsmode = reading["dsmode"]
        self._fallback = {
            "datasource": reading["datasource"],
            "subplatform": reading["subplatform"],
            "evidence": evidence,
            "reason": reason,
            "network-config": reading["network-config"],
            "reported-ready": reading["reported-ready"],
        }
        self._crawled_metadata = {
            "meta-data": self.metadata,
            "provider": provider,
            "seed-dir": self.seed_dir,
            "fallback": {k: v for k, v in self._fallback.items()
                         if k not in ("network-config", "reported-ready")},
        }
        self._restore_handler_shim()

    @property
    def network_config(self):
        """The delegate's network config on a fallback boot, else the one from the
        seed's network-data, else none: cloud-init's fallback (DHCP)."""
        fallback = getattr(self, "_fallback", None)  # pickles of older versions
        if fallback:
            return fallback.get("network-config")
        return getattr(self, "_seed_network", None)

    def _get_cloud_name(self) -> str:
        if self.provider is None:
            return sources.METADATA_UNKNOWN
        return providers.CLOUD_NAMES.get(self.provider, sources.METADATA_UNKNOWN)

    def _get_subplatform(self) -> str:
        fallback = getattr(self, "_fallback", None)
        if fallback:
            return fallback["subplatform"]
        return f"seed-dir ({self.seed_dir})"

    def _restore_handler_shim(self) -> None:
        """Put the part-handler shim back if ``cloud-init clean`` removed it.

        cloud-init finds part-handlers only in its handlers directory; the
        package installs the shim there, but ``clean`` empties the directory.
        """
        handlers_dir = self.paths.get_cpath("handlers")
        target = os.path.join(handlers_dir, HANDLER_SHIM_NAME)
        if os.path.exists(target):
            return
        source = os.path.join(os.path.dirname(__file__), "handler_shim.py")
        try:
            with open(source, "rb") as f:
                code = f.read()
            os.makedirs(handlers_dir, mode=0o755, exist_ok=True)
            tmp = f"{target}.tmp"
            with open(tmp, "wb") as f:
                f.write(code)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
            LOG.info("CernVM: restored the part-handler shim %s", target)
        except OSError as err:
            LOG.warning("CernVM: cannot restore the part-handler shim %s: %s", target, err)


class DataSourceCernVMNet(DataSourceCernVM):
    """The same datasource in the network stage: a seed the local stage did not
    see, or a fallback to a delegate that needs the network."""

    fallback_stage = providers.NETWORK_STAGE


def _normalize(raw: bytes) -> bytes:
    """Old-syntax user-data to MIME; on a documented error, the raw data as is."""
    from cloudinit_cernvm import mime_read, userdata  # deferred: see the module doc
    from cloudinit_cernvm.userdata_part import UserDataError

    try:
        return userdata.normalize(raw)
    except mime_read.MimeTooDeep as err:
        if err.depth is not None and err.depth <= MAX_RAW_MIME_DEPTH:
            LOG.warning("CernVM: user-data kept as given, not converted: %s", _redacted(err))
            return raw
        LOG.warning("CernVM: user-data not handed to cloud-init, whose own MIME parser"
                    " fails on it too (the seed keeps it): %s", _redacted(err))
        return b""
    except UserDataError as err:
        LOG.warning("CernVM: user-data kept as given, not converted: %s", _redacted(err))
        return raw


def _vendordata(seed: Seed, name: str) -> object:
    """One vendor-data file of the seed in cloud-init's form (None: none)."""
    if name not in seed.vendor_data:
        return None
    try:
        return sources.convert_vendordata(seed.vendor_data[name])
    except ValueError as err:  # cloud-init's own words: what the content is
        LOG.warning("CernVM: %s/%s: %s; not used (the file is kept)", seed.path, name, err)
        return None


def _load(delegate) -> type:
    """The delegate's class, imported only on a fallback boot."""
    import importlib

    return getattr(importlib.import_module(delegate.module), delegate.class_name)


def _delegate_reading(delegate, sys_cfg: dict, distro, paths, network_off: bool) -> dict | None:
    """What cloud-init's own datasource DELEGATE reads, as plain data (None: nothing).

    The metadata keys that cloud-init's base class reads (instance id,
    hostname, keys, zone, region) are taken from the delegate's own methods,
    which some delegates override, so that the CernVM class answers as it
    would. Its network config is computed here, with the delegate at hand,
    unless the system config turns network configuration off (some compute
    it from the machine's interfaces, and warn when there is none).
    """
    from cloudinit_cernvm import fallback

    ds = _load(delegate)(sys_cfg, distro, paths)
    if not ds._get_data():
        return None
    meta = dict(ds.metadata or {})
    meta["instance-id"] = ds.get_instance_id()
    hostname = _metadata_hostname(ds)
    if hostname:
        meta["local-hostname"] = hostname
    keys = ds.get_public_ssh_keys()
    if keys:
        meta["public-keys"] = list(keys)
    for key, value in (("availability-zone", ds.availability_zone), ("region", ds.region)):
        if value:
            meta[key] = value
    reading = {
        "meta-data": meta,
        "user-data": ds.userdata_raw,
        "vendor-data": ds.vendordata_raw,
        "dsmode": ds.dsmode,
        "datasource": ds.dsname,
        "subplatform": fallback.subplatform(ds.dsname, ds.subplatform),
        "network-config": None if network_off else ds.network_config,
        "reported-ready": fallback.reported_ready(ds),
    }
    if hasattr(ds, "vendordata2_raw"):  # cloud-init 21.4+
        reading["vendor-data2"] = ds.vendordata2_raw
    return reading


def _metadata_hostname(ds: sources.DataSource) -> str | None:
    """The hostname the delegate's metadata gives (a str before cloud-init 22.2,
    a DataSourceHostname after), never a made-up default."""
    try:
        found = ds.get_hostname(metadata_only=True)
    except Exception:  # a delegate's quirk must not cost the context
        return None
    found = getattr(found, "hostname", found)
    return found if isinstance(found, str) and found else None


def _as_bytes(data: object) -> bytes:
    """User-data as bytes: delegates give bytes, str or None."""
    if data is None:
        return b""
    if isinstance(data, str):
        return data.encode("utf-8", "surrogateescape")
    return bytes(data)


def _redacted(message: object) -> str:
    """A message for the log, credentials hidden (``redact``, imported only for one)."""
    from cloudinit_cernvm.redact import redact_text

    return redact_text(str(message))


def _dmi_uuid() -> str | None:
    """The machine's DMI UUID, read from sysfs (no dmidecode: fast, local)."""
    try:
        with open("/sys/class/dmi/id/product_uuid") as f:
            return f.read().strip() or None
    except OSError:
        return None


datasources = [
    (DataSourceCernVM, (sources.DEP_FILESYSTEM,)),
    (DataSourceCernVMNet, (sources.DEP_FILESYSTEM, sources.DEP_NETWORK)),
]


def get_datasource_list(depends):
    """Return the datasource classes that match ``depends`` (cloud-init's loader)."""
    return sources.list_from_depends(depends, datasources)
