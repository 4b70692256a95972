"""What text the host app may send us: one rule, applied where the text enters (the API).

A notification's title becomes an e-mail ``Subject`` header and the first line of a chat
message; its body becomes message text in three providers' markups. A character that breaks
one of those must be refused on the way in, with a 400 naming it, not discovered by a worker
on every retry (issue 12, class 4). The rules:

- **One line** (titles, keys, addresses, URLs): no control character at all (C0, DEL, C1 —
  tab and line breaks included), no U+2028/U+2029 line or paragraph separator, no lone
  surrogate (unencodable in UTF-8: it reaches JSON as ``\\ud800``), no bidirectional embedding,
  override or isolate control (they reorder what a reader sees: a spoofing tool).
- **Text** (bodies): the same, except that newline and tab are allowed; ``\\r\\n`` and a lone
  ``\\r`` are normalised to ``\\n`` first, since that is what a careless integrator sends.

Zero-width joiners and variation selectors stay allowed: emoji sequences are made of them.
"""

from __future__ import annotations

import unicodedata

#: LRE, RLE, PDF, LRO, RLO and LRI, RLI, FSI, PDI.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})


class BadText(ValueError):
    """``reason`` is a sentence for the API's ``detail``: which character, where."""


def _refused(char: str, allowed: str) -> bool:
    return char not in allowed and (
        unicodedata.category(char) in _REFUSED_CATEGORIES or char in BIDI_CONTROLS
    )


def _check(value: str, allowed: str) -> str:
    for position, char in enumerate(value):
        if _refused(char, allowed):
            raise BadText(
                f"contains the control character U+{ord(char):04X} at position {position}"
                + (" (it must be one line)" if char in "\n\r\u2028\u2029\x85" else "")
            )
    return value


def one_line(value: str) -> str:
    """``value`` if it is one line of printable text, else :class:`BadText`."""
    return _check(value, "")


def multiline(value: str) -> str:
    """``value`` with line endings normalised to ``\\n``, if otherwise printable."""
    return _check(value.replace("\r\n", "\n").replace("\r", "\n"), "\n\t")
