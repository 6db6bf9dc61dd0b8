"""The simulated clouds of the whole-boot tests and of ``bench/boot.py``.

One :class:`Cloud` per provider case: the DMI strings the machine shows,
the fake metadata service (``tests/fakes/metadata.py``) and where the guest
addresses it, or the context image (``context_image``) on the CD-ROM, and
what the seed must then hold. The same user-data goes everywhere: MIME
multipart with a cloud-config part (a ``runcmd`` marker), a µCernVM block
and amiconfig sections, so that every consumer has its part.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cloudinit_cernvm.context_image import context, formats, iso9660
from tests.fakes.metadata import Fault, Instance, MetadataService

from . import clouds, qemu

#: What runcmd writes inside the machine: proof the user-data was consumed.
RUNCMD_MARKER = "/var/log/cernvm-vmtest-runcmd"

USER_DATA = (
    b'Content-Type: multipart/mixed; boundary="==vmtest=="\n'
    b"MIME-Version: 1.0\n"
    b"\n"
    b"--==vmtest==\n"
    b'Content-Type: text/cloud-config; charset="us-ascii"\n'
    b"\n"
    b"#cloud-config\n"
    b"runcmd:\n"
    b" - [sh, -c, 'echo consumed >> " + RUNCMD_MARKER.encode() + b"']\n"
    b"\n"
    b"--==vmtest==\n"
    b'Content-Type: text/ucernvm; charset="us-ascii"\n'
    b"\n"
    b"[ucernvm-begin]\n"
    b"resize_rootfs=off\n"
    b"cvmfs_http_proxy=http://squid.example.org:3128\n"
    b"[ucernvm-end]\n"
    b"\n"
    b"--==vmtest==\n"
    b'Content-Type: text/amiconfig; charset="us-ascii"\n'
    b"\n"
    b"[amiconfig]\n"
    b"plugins = condor\n"
    b"[cernvm]\n"
    b"organisations = ATLAS\n"
    b"\n"
    b"--==vmtest==--\n"
)
#: What the site's vendor-data writes inside the machine (OpenStack, ConfigDrive).
VENDOR_MARKER = "/var/log/cernvm-vmtest-vendor"
#: vendor_data.json as a site's nova serves it: a cloud-config for cloud-init
VENDOR_DATA = json.dumps({
    "cloud-init": f"#cloud-config\nbootcmd:\n - [sh, -c, 'echo site >> {VENDOR_MARKER}']\n",
    "site": {"proxy": "http://squid.example.org:3128"}}).encode()
UCONTEXT = (b"_UCONTEXT_RESIZE_ROOTFS=0\n"
            b"_UCONTEXT_CVMFS_HTTP_PROXY=http://squid.example.org:3128\n")
#: amiconfig sections the user-data carries (for the amiconfig check)
AMICONFIG_SECTIONS = ("amiconfig", "cernvm")
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIVmTestKey vmtest@example"
MEDIA_ID = "7c1d1e0a-9b6e-4c3f-8a57-0d3c2b1a0f9e"
MEDIA_HOST = "cvm-media"


@dataclass
class Cloud:
    """One simulated cloud, as the guest and stock cloud-init see it."""

    #: the case name (``source`` marker unless ``source`` says otherwise)
    name: str
    #: the seed's ``source`` line; None: no seed expected
    source: str | None
    #: ``v1.cloud_name`` under the CernVM datasource
    cloud_name: str | None
    #: ``v1.instance_id`` expected
    instance_id: str | None
    #: DMI strings
    dmi: dict[str, str] = field(default_factory=dict)
    #: fake metadata service (``MetadataService`` provider) and guest address
    service: str | None = None
    service_ip: str | None = None
    #: context_image format of the CD-ROM
    media: str | None = None
    #: extra kernel command line for the guest
    cmdline: str = ""
    #: the most metadata requests allowed to the microboot stage
    max_requests: int = 3
    #: stock cloud-init's datasource for this cloud (None: the list alone)
    stock_ds: str | None = None
    #: whether the cloud carries the site's vendor-data (VENDOR_DATA)
    vendor: bool = False
    #: meta-data keys the seed must have, with values
    meta: dict[str, object] = field(default_factory=dict)
    #: more arguments of the fake service (``MetadataService``: ``imds_optional``,
    #: ``complete``, ``instance``...), for the benchmark's cases
    service_options: dict[str, object] = field(default_factory=dict)


CLOUDS: dict[str, Cloud] = {c.name: c for c in (
    Cloud("EC2", "EC2", "aws", "i-0123456789abcdef0", dmi=clouds.DMI["EC2"],
          service="EC2", service_ip=qemu.METADATA_IP, max_requests=10, stock_ds="Ec2",
          meta={"instance-id": "i-0123456789abcdef0", "local-hostname": "vm1.example.org",
                "availability-zone": "eu-west-1a", "region": "eu-west-1"}),
    Cloud("GCE", "GCE", "gce", "4520031799277581759", dmi=clouds.DMI["GCE"],
          service="GCE", service_ip=qemu.METADATA_IP, stock_ds="GCE",
          meta={"instance-id": "4520031799277581759"}),
    Cloud("OpenStack", "OpenStack", "openstack", "d8e02d56-2648-49a3-bf97-6be8f1204f38",
          dmi=clouds.DMI["OpenStack"], service="OpenStack", service_ip=qemu.METADATA_IP,
          stock_ds="OpenStack", vendor=True, max_requests=5,
          meta={"instance-id": "d8e02d56-2648-49a3-bf97-6be8f1204f38",
                "local-hostname": "vm1.example.org"}),
    Cloud("ConfigDrive", "ConfigDrive", "openstack", MEDIA_ID, media="configdrive",
          stock_ds="ConfigDrive", vendor=True,
          meta={"instance-id": MEDIA_ID, "local-hostname": MEDIA_HOST,
                "public-keys": [SSH_KEY]}),
    Cloud("CloudStack", "CloudStack", "cloudstack", "2f5e6b3c-4a5b-4c6d-8e9f-0a1b2c3d4e5f",
          dmi=clouds.DMI["CloudStack"], service="CloudStack", service_ip=qemu.ROUTER_IP,
          cmdline=qemu.router_cmdline(), stock_ds="CloudStack",
          meta={"instance-id": "2f5e6b3c-4a5b-4c6d-8e9f-0a1b2c3d4e5f",
                "public-keys": ["ssh-ed25519 AAAAC3Nza test@example"]}),
    Cloud("OpenNebula", "OpenNebula", "opennebula", MEDIA_ID, media="opennebula",
          stock_ds="OpenNebula", meta={"instance-id": MEDIA_ID, "local-hostname": MEDIA_HOST,
                                       "public-keys": [SSH_KEY]}),
    Cloud("HEPiX", "OpenNebula", "opennebula", MEDIA_ID, media="hepix",
          stock_ds="OpenNebula", meta={"instance-id": MEDIA_ID, "local-hostname": MEDIA_HOST,
                                       "public-keys": [SSH_KEY]}),
    # cloud-init's NoCloud seed disk (libvirt, Proxmox, cloud-localds)
    Cloud("NoCloud", "NoCloud", "nocloud", MEDIA_ID, media="nocloud", stock_ds="NoCloud",
          meta={"instance-id": MEDIA_ID, "local-hostname": MEDIA_HOST,
                "public-keys": [SSH_KEY]}),
    # µCernVM's CD of user-data.txt on a VMware machine: the instance id is
    # the DMI UUID
    Cloud("vSphere", "vSphere", "vmware", clouds.VSPHERE_UUID, dmi=clouds.DMI["vSphere"],
          media="vsphere"),
    # Vac: a plain libvirt machine, EC2's paths on 169.254.169.254, found by the probe
    Cloud("Vac", "EC2", "aws", "i-0123456789abcdef0", service="EC2",
          service_ip=qemu.METADATA_IP, max_requests=10,
          meta={"instance-id": "i-0123456789abcdef0", "local-hostname": "vm1.example.org"}),
    # Azure without its provisioning CD: IMDS userData; the ready report is
    # checked where cloud-init runs on the seed (test_providers)
    Cloud("Azure", "Azure", "azure", "5c5b8e1a-3e0d-4d6b-9b9a-0123456789ab",
          dmi=clouds.DMI["Azure"], service="Azure", service_ip=qemu.METADATA_IP,
          max_requests=5, meta={"instance-id": "5c5b8e1a-3e0d-4d6b-9b9a-0123456789ab"}),
    # no local evidence and nothing on 169.254.169.254 (restrict=on: the
    # probe's connect goes nowhere, never out of the test machine)
    Cloud("none", None, None, None),
)}


def context_image(cloud: Cloud, out: Path, user_data: bytes = USER_DATA) -> Path | None:
    """The cloud's context image, written by this project's make-iso code."""
    if cloud.media is None:
        return None
    tree = context_tree(cloud, user_data)
    iso9660.write_image(tree, formats.LABELS[cloud.media], str(out), force=True)
    return out


def context_tree(cloud: Cloud, user_data: bytes = USER_DATA) -> dict[str, bytes]:
    """The files of the cloud's context image (for readers that get a directory).

    vSphere's CD holds user-data.txt alone: no keys, no hostname."""
    assert cloud.media is not None
    alone = cloud.media == "vsphere"
    ctx = context.Context(instance_id=MEDIA_ID, user_data=user_data,
                          ssh_keys=[] if alone else [SSH_KEY],
                          hostname=None if alone else MEDIA_HOST,
                          vendor_data=VENDOR_DATA if cloud.vendor else None)
    return dict(formats.build_tree(cloud.media, ctx))


@contextlib.contextmanager
def service(cloud: Cloud, user_data: bytes = USER_DATA,
            lifetime: float = 300.0, fault: Fault | None = None
            ) -> Iterator[MetadataService | None]:
    """The cloud's fake metadata service on loopback (None for media clouds),
    with FAULT (``tests.fakes.metadata.Fault``) if given."""
    if cloud.service is None:
        yield None
        return
    options = dict(cloud.service_options)
    if cloud.vendor and "instance" not in options:
        options["instance"] = Instance(vendor_data=VENDOR_DATA)
    with MetadataService(cloud.service, user_data, lifetime=lifetime, fault=fault,
                         **options) as svc:  # type: ignore[arg-type]
        yield svc


def port_of(svc: MetadataService) -> int:
    """The loopback port of a running fake."""
    return int(svc.url.rsplit(":", 1)[1])


def boot(cloud: Cloud, workdir: Path, *, cmdline: str = "", fault: Fault | None = None,
         **qemu_kw) -> tuple[
        qemu.BootResult, list]:
    """Boot the VM once as ``cloud`` shows itself: its DMI, its context image
    on the CD-ROM, its fake metadata service forwarded to the address the
    guest expects. Returns the boot and the requests the fake answered.

    ``cmdline``: more kernel command line after the cloud's own;
    ``qemu_kw``: the rest of ``qemu.boot``'s arguments (``image``, ``timeout``...).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    iso = context_image(cloud, workdir / "context.iso")
    with service(cloud, fault=fault) as svc:
        fwd = [(cloud.service_ip, 80, port_of(svc))] if svc else []
        res = qemu.boot(smbios=cloud.dmi, cdrom=iso, guestfwd=fwd,
                        kernel_cmdline_extra=" ".join(filter(None, (cloud.cmdline, cmdline))),
                        workdir=workdir / "boot", **qemu_kw)
        requests = list(svc.requests) if svc else []
    return res, requests
