"""Ask real cloud-init what it finds in a root where the RPM was installed.

Run as a script, by the test, under ``python -S`` with PYTHONPATH naming
only an unpacked cloud-init release, the root's site directory and the
third-party libraries cloud-init needs, so that nothing of the checkout can
be imported. It does what cloud-init does, with cloud-init's own functions:

- reads the root's ``cloud.cfg.d`` (``util.read_conf_d``);
- looks the configured datasources up for the local stage
  (``sources.list_sources(cfg_list, depends, pkg_list)``, the same
  signature from 20.4 to 26.x);
- registers the modules of the root's handlers directory as
  ``Init._do_handlers`` does (``importer.find_module`` with the required
  attributes, ``handlers.fixup_handler``, ``ContentHandlers.register``).

Prints one JSON object on stdout.

Usage: cloudinit_probe.py ROOT
"""

from __future__ import annotations

import json
import os
import sys


def _modules_in(path: str) -> dict:
    """The handler modules of a directory, by cloud-init's own listing."""
    from cloudinit import util

    # Renamed in 22.x; the older name is what 20.4 has.
    lister = getattr(util, "get_modules_from_dir", None) or util.find_modules
    return lister(path)


def probe(root: str) -> dict:
    """Return what cloud-init finds under ROOT (see the module docstring)."""
    import cloudinit
    from cloudinit import handlers, helpers, importer, sources, util
    from cloudinit import version as ci_version

    result: dict = {
        "cloudinit_file": cloudinit.__file__,
        "cloudinit_version": ci_version.version_string(),
    }
    confd = os.path.join(root, "etc/cloud/cloud.cfg.d")
    cfg = util.read_conf_d(confd) if os.path.isdir(confd) else {}
    result["datasource_list"] = cfg.get("datasource_list")
    result["datasource_pkg_list"] = cfg.get("datasource_pkg_list")
    result["datasource_cfg"] = (cfg.get("datasource") or {}).get("CernVM")

    found = []
    if cfg.get("datasource_list"):
        classes = sources.list_sources(
            cfg["datasource_list"], [sources.DEP_FILESYSTEM], cfg.get("datasource_pkg_list") or []
        )
        for cls in classes:
            found.append(
                {
                    "class": cls.__name__,
                    "dsname": getattr(cls, "dsname", None),
                    "file": sys.modules[cls.__module__].__file__,
                }
            )
    result["local_datasources"] = found

    handlers_dir = os.path.join(root, "var/lib/cloud/handlers")
    registered = []
    if os.path.isdir(handlers_dir):
        sys.path.insert(0, handlers_dir)
        c_handlers = helpers.ContentHandlers()
        for fname, mod_name in sorted(_modules_in(handlers_dir).items()):
            locs, _looked = importer.find_module(mod_name, [""], ["list_types", "handle_part"])
            if not locs:
                registered.append({"file": fname, "types": None})
                continue
            mod = handlers.fixup_handler(importer.import_module(locs[0]))
            types = c_handlers.register(mod)
            registered.append({"file": mod.__file__, "types": sorted(types)})
    result["handlers"] = registered

    try:
        import cloudinit_cernvm

        result["package_file"] = cloudinit_cernvm.__file__
    except ImportError:
        result["package_file"] = None
    return result


if __name__ == "__main__":
    print(json.dumps(probe(sys.argv[1])))
