"""cloud-config checked: valid YAML, a mapping and, where importable, cloud-init's schema.

Apart from the other checks: it is the one that imports PyYAML and
cloud-init (both only when a cloud-config part is checked).
"""

from __future__ import annotations

from cloudinit_cernvm.validate.problem import Place, Problem


def check_cloud_config(text: str, place: Place) -> list[Problem]:
    """cloud-config: valid YAML, a mapping and, where cloud-init is importable, its schema."""
    try:
        import yaml
    except ImportError:  # PyYAML missing: nothing to check with
        return []
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        line = mark.line + 1 if mark is not None else None
        return [place.problem(line, "yaml-invalid", f"cloud-config is not valid YAML: {problem}")]
    if config is None:
        return []
    if not isinstance(config, dict):
        return [
            place.problem(
                None,
                "cloud-config-not-mapping",
                "cloud-config must be a mapping of module settings",
            )
        ]
    return [
        place.problem(None, "cloud-config-schema", message)
        for message in cloud_init_schema_errors(config)
    ]


def cloud_init_schema_errors(config: dict) -> list[str]:
    """Errors of ``config`` by cloud-init's schema, if cloud-init is importable.

    The schema API differs between releases (20.4 takes the schema as the
    second positional argument, 25.1 has ``schema_type`` there): the schema
    is passed by keyword, and any failure of the check itself is ignored.
    """
    try:
        from cloudinit.config import schema as ci_schema
    except Exception:  # no cloud-init here, or a broken one: no schema check
        return []
    try:
        full = ci_schema.get_schema()
        ci_schema.validate_cloudconfig_schema(config, schema=full, strict=True)
    except ci_schema.SchemaValidationError as exc:
        found = []
        for item in getattr(exc, "schema_errors", ()) or ():
            path, message = (item[0], item[1]) if isinstance(item, tuple) else (item, "")
            found.append(f"cloud-config {path}: {message}" if message else f"cloud-config: {path}")
        return found or [f"cloud-config: {str(exc).splitlines()[0]}"]
    except Exception:  # the check itself failed on this release: say nothing
        return []
    return []
