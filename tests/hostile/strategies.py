"""Hypothesis strategies for hostile input: JSON of any shape, nesting bombs, huge integers,
control characters, and ways to mutate a valid payload (issue 12)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

#: Characters careless integrators and attackers send: C0/C1 controls, line and paragraph
#: separators, bidi overrides, a lone surrogate, NUL, BOM.
NASTY_CHARS = "\x00\x01\x07\x08\x0b\x0c\r\n\t\x1b\x7f\x85\u2028\u2029\u202e\u2066\ufeff\ud800"

nasty_text = st.text(
    alphabet=st.one_of(st.sampled_from(NASTY_CHARS), st.characters(codec="utf-8")),
    max_size=40,
) | st.text(max_size=40)

huge_ints = st.one_of(
    st.integers(min_value=2**63, max_value=2**200),
    st.integers(max_value=-(2**63) - 1, min_value=-(2**200)),
    st.just(2**63),
    st.just(2**64),
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    nasty_text,
)

json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


def nesting_bomb(depth: int, opener: str) -> bytes:
    """``[[[[…]]]]`` or ``{"a":{"a":…}}`` ``depth`` levels deep (closed, so it is valid JSON)."""
    if opener == "[":
        return ("[" * depth + "]" * depth).encode()
    return ('{"a":' * depth + "1" + "}" * depth).encode()


bombs = st.builds(
    nesting_bomb, st.integers(min_value=33, max_value=200_000), st.sampled_from(["[", "{"])
)


def replace_at(document: Any, path: list[Any], value: Any) -> Any:
    """A deep copy of ``document`` with the value at ``path`` replaced (or added)."""
    copy = json.loads(json.dumps(document))
    if not path:
        return value
    node = copy
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return copy


def paths(document: Any, prefix: list[Any] | None = None) -> list[list[Any]]:
    """Every path to a value inside ``document`` (objects and arrays), the root included."""
    prefix = prefix or []
    found = [prefix]
    if isinstance(document, dict):
        for key, value in document.items():
            found += paths(value, [*prefix, key])
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += paths(value, [*prefix, index])
    return found


def dumps(value: Any) -> bytes:
    """JSON bytes even for lone surrogates (``ensure_ascii`` escapes them as ``\\ud800``)."""
    return json.dumps(value, ensure_ascii=True).encode()
