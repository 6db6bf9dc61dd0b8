"""The earlier release of this package, taken from git history for upgrade tests.

``v0.1.0`` is the annotated tag of the first release. A clone made without
tags (CI's clean clone of main) still has the commit in its history: the
pinned hash below is what the tag names (``git rev-parse v0.1.0^{commit}``).
"""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

from tests.harness.sandbox import REPO

EARLIER_TAG = "v0.1.0"
#: the commit the tag names (main before vendor-data, site context and
#: network configuration), for clones without the tag
EARLIER_COMMIT = "9cec2ebef034ce7942af290aa05630b93952ceeb"


def earlier_commit() -> str:
    """The commit of the earlier release: the tag, else the pinned hash."""
    for ref in (f"{EARLIER_TAG}^{{commit}}", f"{EARLIER_COMMIT}^{{commit}}"):
        found = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--verify", "--quiet", ref],
                               capture_output=True, text=True, check=False)
        if found.returncode == 0:
            return found.stdout.strip()
    raise AssertionError(f"neither {EARLIER_TAG} nor {EARLIER_COMMIT} is in this clone's "
                         "history: fetch the tags (git fetch --tags) or the full history "
                         "(git fetch --unshallow)")


def extract(dest: Path, *paths: str) -> Path:
    """The earlier release's tree (or only PATHS of it) in DEST, by ``git archive``."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest.with_name(dest.name + ".tar")
    subprocess.run(["git", "-C", str(REPO), "archive", "-o", str(archive), earlier_commit(),
                    *paths], check=True, capture_output=True)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="tar")
    archive.unlink()
    return dest
