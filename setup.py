"""cloudinit-cernvm: CernVM contextualization on cloud-init."""

from setuptools import find_packages, setup

setup(
    name="cloudinit-cernvm",
    version="0.1.0",
    description="CernVM contextualization: one detection, one fetch, one parse",
    long_description=open("README.rst", encoding="utf-8").read(),
    long_description_content_type="text/x-rst",
    license="BSD-3-Clause",
    python_requires=">=3.9",
    packages=find_packages(include=["cloudinit_cernvm", "cloudinit_cernvm.*"]),
    package_data={"cloudinit_cernvm": ["microboot/*", "microboot/*/*"]},
    include_package_data=True,
    # The boot path needs only cloud-init (which brings PyYAML and Jinja2);
    # cloud-init is not on PyPI, so it is not declared here.
    install_requires=[],
    extras_require={"iso": ["pycdlib"]},
    entry_points={"console_scripts": ["cernvm-context = cloudinit_cernvm.cli:main"]},
)
