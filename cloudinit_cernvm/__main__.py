"""``python -m cloudinit_cernvm``: the ``cernvm-context`` command line."""

import sys

from cloudinit_cernvm.cli import main

sys.exit(main())
