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
    # gettext, ngettext, pgettext and npgettext are Babel's default keywords; the lazy forms
    # Flask-Babel adds are not, so they are named here (1c = the first argument is a context).
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
            "-k",
            "lazy_pgettext:1c,2",
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
    """Messages in the source that the catalog lacks or leaves untranslated or fuzzy.

    A message is its context and msgid: ``pgettext("filter", "Linked")`` and a bare
    ``_("Linked")`` are two entries, each needing its own translation.
    """
    with tempfile.TemporaryDirectory() as tmp:
        pot = Path(tmp) / "messages.pot"
        extract(pot)
        with open(pot, "rb") as handle:
            source = [m for m in read_po(handle) if m.id]
    with open(TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po", "rb") as handle:
        catalog = read_po(handle)
    gaps = []
    for message in source:
        entry = catalog.get(message.id, message.context)
        if entry is None or entry.fuzzy or not all(texts(entry.string)):
            gaps.append(label(message.id, message.context))
    return sorted(gaps)


def texts(value: object) -> tuple[str, ...]:
    """A msgid or msgstr as a tuple of texts: a plural entry has one per form."""
    if isinstance(value, (tuple, list)):
        return tuple(str(text or "") for text in value)
    return (str(value or ""),)


def label(msgid: object, context: str | None) -> str:
    """How an entry is named in reports: its msgid (the singular for plurals), with context."""
    text = texts(msgid)[0]
    return f"{text} [{context}]" if context else text


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
