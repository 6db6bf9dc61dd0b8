"""What every fake metadata service answers with: replies and tree listings.

The lowest room of the fakes: each cloud's module (``ec2.py``, ``gce.py``,
...) builds its items with these, and ``metadata.py`` serves them.
"""

from __future__ import annotations

Reply = tuple[int, bytes]
NOT_FOUND: Reply = (404, b"Not Found")


def lookup(items: dict[str, Reply], path: str) -> Reply:
    """An item, or a directory's listing (children a line, "/" after a
    directory), as EC2-style trees answer a directory's path."""
    if path in items:
        return items[path]
    if not path.endswith("/"):
        path += "/"  # a directory's name lists it too
    children: list[str] = []
    for key in items:
        if key.startswith(path) and items[key][0] == 200:
            rest = key[len(path):]
            child = rest.split("/", 1)[0] + ("/" if "/" in rest else "")
            if child not in children:
                children.append(child)
    return (200, "\n".join(children).encode()) if children else NOT_FOUND
