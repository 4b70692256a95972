"""Catalog upkeep: ``python scripts/i18n.py update`` re-extracts messages and merges them into
every catalog; ``check`` fails when a Japanese translation is missing or fuzzy (used by tests).
Japanese translations are written in ``portal/translations/ja/LC_MESSAGES/messages.po``."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "portal" / "translations"
PYBABEL = [sys.executable, "-m", "babel.messages.frontend"]


def extract(pot: Path) -> None:
    # Babel skips folders starting with "_" unless told otherwise: our macros live in _macros/.
    subprocess.run(  # noqa: S603 - our interpreter, fixed arguments
        [
            *PYBABEL,
            "extract",
            "-F",
            str(ROOT / "babel.cfg"),
            "-k",
            "_l",
            "-k",
            "lazy_gettext",
            "--ignore-dirs",
            ".*",
            "-o",
            str(pot),
            "--no-location",
            "--omit-header",
            "--sort-output",
            ".",
        ],
        check=True,
        cwd=ROOT,
        capture_output=True,
    )


def update() -> None:
    pot = TRANSLATIONS / "messages.pot"
    extract(pot)
    for locale in ("ja", "en"):
        po = TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po"
        command = "update" if po.exists() else "init"
        subprocess.run(  # noqa: S603 - our interpreter, fixed arguments
            [
                *PYBABEL,
                command,
                "-i",
                str(pot),
                "-d",
                str(TRANSLATIONS),
                "-l",
                locale,
                *(["--no-fuzzy-matching", "--omit-header"] if command == "update" else []),
            ],
            check=True,
        )


def missing(locale: str = "ja") -> list[str]:
    """Messages in the source that the catalog lacks or leaves untranslated or fuzzy."""
    with tempfile.TemporaryDirectory() as tmp:
        pot = Path(tmp) / "messages.pot"
        extract(pot)
        with open(pot, "rb") as handle:
            source = {str(m.id) for m in read_po(handle) if m.id}
    with open(TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po", "rb") as handle:
        catalog = {str(m.id): m for m in read_po(handle) if m.id}
    return sorted(
        msgid
        for msgid in source
        if msgid not in catalog or not catalog[msgid].string or catalog[msgid].fuzzy
    )


if __name__ == "__main__":
    if sys.argv[1:] == ["update"]:
        update()
    elif sys.argv[1:] == ["check"]:
        gaps = missing()
        for gap in gaps:
            print("untranslated:", gap)
        sys.exit(1 if gaps else 0)
    else:
        sys.exit(__doc__)
