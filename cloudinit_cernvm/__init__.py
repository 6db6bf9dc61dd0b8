"""CernVM contextualization on cloud-init.

The package holds the cloud-init datasource ``CernVM`` (module
``DataSourceCernVM``), the user-data conversion, the part-handlers, the
``cernvm-context`` command line and the microboot stage (``microboot/``).
"""

__version__ = "0.1.0"
