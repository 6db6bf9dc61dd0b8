"""cloudinit-cernvm: CernVM contextualization on cloud-init.

The metadata is in setup.cfg and the build system in pyproject.toml; this
file stays for tools that still call ``setup.py``.
"""

from setuptools import setup

setup()
