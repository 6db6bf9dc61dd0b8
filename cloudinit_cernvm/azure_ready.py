"""Azure's ready report: the *Ready* health report to the wireserver.

Azure waits, after it starts a VM, for the guest to say through the
wireserver (168.63.129.16, or the address in DHCP option 245) that
provisioning is done; without it the VM is marked failed
(``OSProvisioningTimedOut``) although it runs. cloud-init's Azure
datasource sends it; when the CernVM datasource replaces that one, this
module does.

The report needs the goal state (``GET /machine/?comp=goalstate``: the
incarnation, container id and role instance id) and is a ``POST
/machine?comp=health`` of a ``<Health>`` document with state ``Ready``,
both with the headers the wireserver expects (``x-ms-agent-name``,
``x-ms-version: 2012-11-30``), as cloud-init's own helper sends them.

Why here, and when: it is sent from the datasource's ``activate``, which
cloud-init calls at the end of the network stage, not from the microboot
stage. There the network is up (the local stage may run before it, and
cloud-init's Azure datasource brings up a DHCP lease of its own for that,
which this project does not copy); the initramfs's 15 s budget stays for
the user-data; the XML is read and written by the standard library; and a
failure is a WARNING in cloud-init's log and status, where the user looks.
Azure allows many minutes for the report, so a boot's worth of delay costs
nothing.

Once per instance: a marker ``azure-ready`` in the instance's ``cernvm``
records directory is written when the report was accepted; later boots of
the same instance send nothing. A failed report is tried again at the next
boot. The whole exchange is bounded by ``BUDGET_S`` seconds; the boot goes
on whatever happens.
"""

from __future__ import annotations

import logging
import os
import re
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

LOG = logging.getLogger(__name__)

DEFAULT_WIRESERVER = "168.63.129.16"
#: the whole exchange, goal state and report, retries included
BUDGET_S = 10.0
HEADERS = {"x-ms-agent-name": "WALinuxAgent", "x-ms-version": "2012-11-30"}
MARKER = "azure-ready"
#: answers larger than this are no goal state (the real one is a few KiB)
MAX_ANSWER = 256 * 1024
#: where DHCP clients leave option 245: dhclient's lease files
#: ("option unknown-245 a8:3f:81:10;") and systemd-networkd's ("OPTION_245=a83f8110")
LEASE_DIRS = ("var/lib/dhclient", "var/lib/dhcp", "run/systemd/netif/leases")

HEALTH_TEMPLATE = """\
<?xml version="1.0" encoding="utf-8"?>
<Health xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
 xmlns:xsd="http://www.w3.org/2001/XMLSchema">
  <GoalStateIncarnation>{incarnation}</GoalStateIncarnation>
  <Container>
    <ContainerId>{container_id}</ContainerId>
    <RoleInstanceList>
      <Role>
        <InstanceId>{instance_id}</InstanceId>
        <Health>
          <State>Ready</State>
        </Health>
      </Role>
    </RoleInstanceList>
  </Container>
</Health>
"""


class ReportError(Exception):
    """The report could not be made; the message says why, on one line."""


class GoalState:
    """The three values of the goal state that the report names."""

    __slots__ = ("container_id", "incarnation", "instance_id")

    def __init__(self, incarnation: str, container_id: str, instance_id: str) -> None:
        self.incarnation = incarnation
        self.container_id = container_id
        self.instance_id = instance_id


def parse_goal_state(xml: bytes) -> GoalState:
    """The goal state's incarnation, container id and role instance id."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as err:
        raise ReportError(f"the goal state is no XML: {err}") from None
    values = {}
    for name, path in (("incarnation", "./Incarnation"),
                       ("container_id", "./Container/ContainerId"),
                       ("instance_id", "./Container/RoleInstanceList/RoleInstance/InstanceId")):
        text = root.findtext(path)
        if not text or not text.strip():
            raise ReportError(f"the goal state has no {path[2:]}")
        values[name] = text.strip()
    return GoalState(**values)


def health_report(goal: GoalState) -> bytes:
    """The ``Ready`` health report for GOAL, as cloud-init's helper writes it."""
    return HEALTH_TEMPLATE.format(incarnation=escape(goal.incarnation),
                                  container_id=escape(goal.container_id),
                                  instance_id=escape(goal.instance_id)).encode("utf-8")


def option_245(value: str) -> str | None:
    """The address in a lease's option 245: ``a8:3f:81:10`` (dhclient, hex
    pairs, a leading zero may be missing) or ``a83f8110`` (networkd)."""
    value = value.strip().strip(";").strip('"').replace("\\", "")
    pairs = value.split(":") if ":" in value else re.findall("..", value)
    if len(pairs) != 4 or not all(re.fullmatch("[0-9a-fA-F]{1,2}", p) for p in pairs):
        return None
    return ".".join(str(int(p, 16)) for p in pairs)


def wireserver_from_leases(sysroot: str = "/") -> str | None:
    """The wireserver address a DHCP client recorded (the newest file's), or None."""
    found: list[tuple[float, str]] = []
    for rel in LEASE_DIRS:
        top = os.path.join(sysroot, rel)
        try:
            names = os.listdir(top)
        except OSError:
            continue
        for name in names:
            path = os.path.join(top, name)
            try:
                with open(path, encoding="utf-8", errors="replace") as f:
                    text = f.read(MAX_ANSWER)
                mtime = os.path.getmtime(path)
            except OSError:
                continue
            values = re.findall(r"(?:unknown-245\s+|^OPTION_245=)(\S+)", text, re.MULTILINE)
            addresses = [a for a in map(option_245, values) if a]
            if addresses:
                found.append((mtime, addresses[-1]))
    return max(found)[1] if found else None


class _Client:
    """HTTP to the wireserver within one deadline, no proxy (it is link-local)."""

    def __init__(self, endpoint: str, budget: float) -> None:
        self.base = f"http://{endpoint}"
        self.deadline = time.monotonic() + budget
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def request(self, path: str, data: bytes | None = None) -> bytes:
        """The answer's body; a refused connection or a 5xx is tried again
        after a second while time is left."""
        headers = dict(HEADERS)
        if data is not None:
            headers["Content-Type"] = "text/xml; charset=utf-8"
        while True:
            left = self.deadline - time.monotonic()
            if left <= 0.05:
                raise ReportError(f"no answer from {self.base} within {BUDGET_S:g} s")
            req = urllib.request.Request(self.base + path, data=data, headers=headers,
                                         method="GET" if data is None else "POST")
            try:
                with self.opener.open(req, timeout=min(left, 5.0)) as resp:
                    return resp.read(MAX_ANSWER)
            except urllib.error.HTTPError as err:
                if err.code < 500:
                    raise ReportError(f"{path}: status {err.code}") from None
                why = f"status {err.code}"
            except (OSError, ValueError) as err:  # URLError, timeouts, resets
                why = str(getattr(err, "reason", err))
            if self.deadline - time.monotonic() < 1.0:
                raise ReportError(f"{path}: {why}")
            time.sleep(1.0)


def report_ready(endpoint: str, budget: float = BUDGET_S) -> GoalState:
    """Fetch the goal state and post the Ready report; the goal state used."""
    client = _Client(endpoint, budget)
    goal = parse_goal_state(client.request("/machine/?comp=goalstate"))
    client.request("/machine?comp=health", health_report(goal))
    return goal


def report_once(records_dir: str, ds_cfg: dict, sysroot: str = "/") -> bool:
    """Report ready unless this instance has (marker in RECORDS_DIR).

    ``ds_cfg``'s ``azure_wireserver`` names the endpoint (host or
    host:port); else DHCP option 245; else 168.63.129.16. ``azure_ready:
    false`` turns the report off (an image whose own agent reports).
    Returns True when the instance has reported, now or before. Never
    raises: a failure is one WARNING line and the boot goes on.
    """
    if ds_cfg.get("azure_ready", True) in (False, "false", "off", "no"):
        LOG.info("CernVM: Azure ready report turned off (azure_ready)")
        return False
    marker = os.path.join(records_dir, MARKER)
    if os.path.exists(marker):
        LOG.debug("CernVM: Azure ready report already sent for this instance")
        return True
    endpoint = str(ds_cfg.get("azure_wireserver") or wireserver_from_leases(sysroot)
                   or DEFAULT_WIRESERVER)
    started = time.monotonic()
    try:
        goal = report_ready(endpoint)
    except ReportError as err:
        LOG.warning("CernVM: could not report ready to Azure's wireserver %s (Azure may mark"
                    " the provisioning failed; tried again at the next boot): %s",
                    endpoint, err)
        return False
    try:
        os.makedirs(records_dir, mode=0o700, exist_ok=True)
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"{goal.container_id} {goal.instance_id} {goal.incarnation}\n")
    except OSError as err:
        LOG.info("CernVM: Azure ready marker %s not written: %s", marker, err)
    LOG.info("CernVM: reported ready to Azure's wireserver %s (incarnation %s, %.1f s)",
             endpoint, goal.incarnation, time.monotonic() - started)
    return True
