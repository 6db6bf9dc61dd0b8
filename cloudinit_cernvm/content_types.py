"""The MIME types of CernVM's user-data parts (DESIGN.md).

A module of their own so that the part-handlers, which cloud-init imports
in every boot, can name them without importing the user-data converter.
"""

AMICONFIG = "text/amiconfig"
AMICONFIG_USER_DATA = "text/amiconfig-user-data"
UCERNVM = "text/ucernvm"
SCRIPT = "text/x-shellscript"
#: old-syntax ``#!/bin/sh.before`` scripts, run right before amiconfig
SCRIPT_BEFORE = "text/x-shellscript-before-amiconfig"
CLOUD_CONFIG = "text/cloud-config"
