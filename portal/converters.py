"""URL converters: integers in paths are range-checked where they enter (issue 12).

Every ``<int:…>`` in our routes is a database id, and our id columns are ``Integer``: 32 bits
on PostgreSQL. Werkzeug's own converter matches any run of digits: 2^31 reaches PostgreSQL as
a ``DataError`` ("integer out of range"), 2^63 SQLite as an ``OverflowError``, and 5,000
digits make ``int()`` itself refuse. Ours matches 1 … ``ID_MAX`` only; anything else is a
plain 404, as for an id that does not exist.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from werkzeug.routing import IntegerConverter, Map

#: The largest id an ``Integer`` primary key holds on every database we run on.
ID_MAX = 2**31 - 1


class IdConverter(IntegerConverter):
    """A positive database id."""

    regex = r"\d{1,10}"

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min", 1)
        kwargs.setdefault("max", ID_MAX)
        super().__init__(map, *args, **kwargs)


def init_app(app: Flask) -> None:
    """Replace ``int`` before any blueprint adds its rules (rules bind converters when added)."""
    app.url_map.converters["int"] = IdConverter


_ID = re.compile(r"[0-9]{1,10}")


def parse_id(raw: str | None) -> int | None:
    """A positive database id from a form or query value, or None.

    ASCII digits only: ``str.isdigit`` also accepts "²" and "١", which ``int()`` then refuses
    or reads, and any length, which the database refuses.
    """
    if raw is None:
        return None
    # int() reads the stripped text: its idea of whitespace is narrower than str.strip()'s
    # ("0\x1f" strips to "0" but int("0\x1f") raises).
    text = raw.strip()
    if not _ID.fullmatch(text):
        return None
    value = int(text)
    return value if 1 <= value <= ID_MAX else None
