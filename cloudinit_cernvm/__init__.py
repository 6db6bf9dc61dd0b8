"""CernVM contextualization on cloud-init.

The package holds the cloud-init datasource ``CernVM`` (module
``DataSourceCernVM``), the user-data conversion, the part-handlers, the
``cernvm-context`` command line and the microboot stage (``microboot/``).
"""

__version__ = "0.1.0"

#: where the microboot stage writes the seed (µCernVM's scratch disk); here,
#: not in ``seed``, so that the datasource and the command line need no
#: seed module to know it
DEFAULT_SEED_DIR = "/mnt/.rw/context"
