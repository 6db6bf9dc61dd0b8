"""Which cloud-init datasource reads the context when the seed is missing.

The microboot stage may fail (the metadata service answered late, the
scratch disk was recreated, ``cloud-init clean`` on an image whose microboot
stage does not run again). The datasource then recognises the provider with
the same rule table (``detect.py``) and hands over to cloud-init's own
datasource for that provider, and for that provider only: no search over the
others. This module is the table and its rules, plain data and functions
without cloud-init, so that the choice is tested without it.

Each delegate runs in the stage where cloud-init itself runs it: the disk
readers (config drive, OpenNebula's context CD, NoCloud's disk) and Azure
(whose datasource brings up its own ephemeral DHCP, and which cloud-init
runs in the local stage only) in the local stage; the metadata services
(EC2, GCE, OpenStack, CloudStack) in the network stage, through their
non-local class, once the network is up.

vSphere has no delegate: µCernVM reads a CD holding ``user-data.txt``, which
cloud-init's VMware datasource does not (it reads guestinfo through VMware
tools), so handing over would find nothing or something else.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import time
from typing import Callable, TypeVar

from cloudinit_cernvm import providers

T = TypeVar("T")

class Delegate:
    """A cloud-init datasource class, named by module and class, and its stage."""

    __slots__ = ("class_name", "module", "stage")

    def __init__(self, module: str, class_name: str, stage: str) -> None:
        self.module = module
        self.class_name = class_name
        self.stage = stage

    @property
    def dsname(self) -> str:
        """The datasource's name as cloud-init spells it (``Ec2``, ``ConfigDrive``)."""
        return self.class_name[len("DataSource"):]

    def __repr__(self) -> str:
        return f"Delegate({self.module}.{self.class_name}, {self.stage})"


#: seed ``source`` provider name -> cloud-init's own datasource for it
#: (``providers.Provider.delegate``). The same classes exist in cloud-init
#: 20.4 to 26.x, with the same constructor (sys_cfg, distro, paths).
DELEGATES: dict[str, Delegate] = {
    p.name: Delegate(f"cloudinit.sources.DataSource{p.delegate}", f"DataSource{p.delegate}",
                     p.delegate_stage)
    for p in providers.PROVIDERS if p.delegate
}


def delegate_for(provider: str) -> Delegate | None:
    """cloud-init's datasource for PROVIDER, or None (vSphere, unknown names)."""
    return DELEGATES.get(provider)


def subplatform(dsname: str, delegate_subplatform: str) -> str:
    """``v1.subplatform`` of a fallback boot: ``fallback (Ec2: http://169.254.169.254)``.

    The delegate's own subplatform is a ``slug (detail)`` string (``metadata
    (URL)``, ``seed-dir (PATH)``, ``config-disk (DEVICE)``); its detail says
    where the data came from, which is what a reader of ``query v1`` wants.
    """
    text = (delegate_subplatform or "").strip()
    if text.endswith(")") and " (" in text:
        text = text[text.index(" (") + 2:-1]
    return f"fallback ({dsname}: {text})" if text and text != "unknown" else f"fallback ({dsname})"


def reported_ready(delegate: object) -> bool:
    """Whether cloud-init's own datasource already told the cloud it is ready.

    cloud-init's Azure datasource reports ready to the wireserver while it
    reads its data (22.x and later, when it brought up ephemeral networking:
    its ``_negotiated`` flag); a second report from this package would say
    the same thing again.
    """
    return getattr(delegate, "_negotiated", False) is True


def network_config_disabled(sys_cfg: dict) -> bool:
    """Whether the system config turns network configuration off.

    cloud-init then never applies a datasource's network config (the system
    config comes first in every release), so the delegate's is not computed:
    some compute it from the machine's interfaces, and warn when there is none.
    """
    network = sys_cfg.get("network") if isinstance(sys_cfg, dict) else None
    return isinstance(network, dict) and network.get("config") == "disabled"


#: the wait a delegate is given when the microboot stage found the service
#: silent (it accepted connections and never answered, through the stage's
#: whole retry budget): cloud-init's own defaults (Ec2: 120 s of waiting, 50 s
#: a request) would add two minutes for nothing; a service that answers slowly
#: or with errors gets the delegate's own patience, since it may yet recover
SILENT_WAIT = {"max_wait": 5, "timeout": 2, "retries": 0}


def delegate_config(sys_cfg: dict, dsname: str, stage_failure: str) -> dict:
    """The system config the delegate DSNAME is made with.

    After a stage that found the service ``silent``, the delegate's
    ``datasource: DSNAME:`` settings for waiting (``max_wait``, ``timeout``,
    ``retries``: what cloud-init's metadata-service datasources read through
    ``get_url_params``) default to :data:`SILENT_WAIT`; what the system config
    sets itself is kept. Otherwise SYS_CFG as it is.
    """
    if stage_failure != "silent" or not isinstance(sys_cfg, dict):
        return sys_cfg
    datasources = sys_cfg.get("datasource")
    datasources = dict(datasources) if isinstance(datasources, dict) else {}
    own = datasources.get(dsname)
    datasources[dsname] = {**SILENT_WAIT, **(own if isinstance(own, dict) else {})}
    return {**sys_cfg, "datasource": datasources}


#: the wall-clock limit of a delegate's reading, in seconds (``datasource:
#: CernVM: fallback_timeout``): cloud-init's own datasources bound each wait
#: for an answer, not the reading of one (a body trickling in at a byte a
#: second, a connection cut and retried for minutes): this bounds the whole
DELEGATE_LIMIT = 180.0
#: the limit after a stage that found the service silent (SILENT_WAIT's
#: 5 s of waiting, and room for cloud-init's own set-up of the delegate)
SILENT_LIMIT = 15.0


def delegate_limit(ds_cfg: dict, stage_failure: str) -> float:
    """The wall-clock limit of the delegate, after a stage that failed so."""
    value = ds_cfg.get("fallback_timeout") if isinstance(ds_cfg, dict) else None
    try:
        limit = float(value) if value is not None else DELEGATE_LIMIT
    except (TypeError, ValueError):
        limit = DELEGATE_LIMIT
    limit = limit if limit > 0 else DELEGATE_LIMIT
    return min(limit, SILENT_LIMIT) if stage_failure == "silent" else limit


class DelegateTimeout(Exception):
    """The delegate did not finish reading within its wall-clock limit."""


class DelegateFailed(Exception):
    """The delegate raised; the message names the exception, on one line."""


def read_in_child(read: Callable[[], T], seconds: float) -> T:
    """READ's result, computed in a child process that has SECONDS of wall clock.

    A thread cannot be stopped: cloud-init's own datasources read from
    worker threads (22.x's dual-stack requests), some with no time-out, and
    a stuck one would keep the stage from ever exiting. In a child, the
    whole reading dies at the limit (:class:`DelegateTimeout`). The result
    comes back pickled (it must be plain data); an exception in READ comes
    back as :class:`DelegateFailed`. The child leaves with ``os._exit``:
    nothing of the parent's (buffers, exit handlers) runs twice.
    """
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        try:
            os.close(rfd)
            try:
                payload = pickle.dumps((True, read()))
            except BaseException as err:  # whatever READ raises goes back as text
                payload = pickle.dumps((False, f"{type(err).__name__}: {err}"))
            with os.fdopen(wfd, "wb") as out:
                out.write(payload)
        finally:
            os._exit(0)
    os.close(wfd)
    chunks: list[bytes] = []
    deadline = time.monotonic() + seconds
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([rfd], [], [], left)[0]:
                os.kill(pid, signal.SIGKILL)
                raise DelegateTimeout(f"did not finish within {seconds:g} s")
            chunk = os.read(rfd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(rfd)
        os.waitpid(pid, 0)
    try:
        done, value = pickle.loads(b"".join(chunks))
    except Exception:  # the child died before it said anything whole
        raise DelegateFailed("its reader ended without an answer") from None
    if not done:
        raise DelegateFailed(value)
    return value
