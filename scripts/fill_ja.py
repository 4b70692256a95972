"""Merge translations from a Python dict file into the Japanese catalog (development aid).

Usage: python scripts/fill_ja.py path/to/dict.py  (the file defines JA = {msgid: msgstr}).
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

PO = Path(__file__).resolve().parent.parent / "portal/translations/ja/LC_MESSAGES/messages.po"


def main(path: str) -> None:
    table: dict[str, str] = runpy.run_path(path)["JA"]
    with open(PO, "rb") as handle:
        catalog = read_po(handle, locale="ja")
    catalog.fuzzy = False
    for message in catalog:
        if message.id and message.id in table:
            message.string = table[message.id]
            message.flags.discard("fuzzy")
    with open(PO, "wb") as handle:
        write_po(handle, catalog, omit_header=False, sort_output=True, no_location=True)


if __name__ == "__main__":
    main(sys.argv[1])
