"""The shared inbound parser (portal/inbound.py): every input ends as a value or a
MalformedBody, never another exception; limits hold for depth, integers and encoding."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.inbound import INT64_MAX, MAX_JSON_DEPTH, MalformedBody, parse_json
from tests.hostile.strategies import bombs, dumps, huge_ints, json_values, nesting_bomb


def outcome(raw: bytes) -> tuple[object, MalformedBody | None]:
    """What parse_json made of ``raw``: a value, or the refusal (any other exception fails)."""
    try:
        return parse_json(raw), None
    except MalformedBody as problem:
        return None, problem


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_parse_or_are_refused_cleanly(raw: bytes) -> None:
    _value, problem = outcome(raw)
    assert problem is None or problem.error in {"invalid_json", "invalid_encoding", "too_deep"}


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_values_within_limits_round_trip(value: object) -> None:
    raw = dumps(value)
    parsed, problem = outcome(raw)
    if problem is not None:  # only because an integer in it was past 64 bits
        assert problem.error == "invalid_json" and "64 bits" in problem.detail
        return
    assert parsed == json.loads(raw)


@settings(max_examples=60, deadline=None)
@given(bombs)
def test_nesting_bombs_are_refused_before_the_parser_recurses(raw: bytes) -> None:
    with pytest.raises(MalformedBody) as caught:
        parse_json(raw)
    assert caught.value.error == "too_deep"


def test_depth_limit_is_exact_and_ignores_brackets_in_strings() -> None:
    assert parse_json(nesting_bomb(MAX_JSON_DEPTH, "[")) is not None
    with pytest.raises(MalformedBody):
        parse_json(nesting_bomb(MAX_JSON_DEPTH + 1, "["))
    brackets = json.dumps({"text": "[" * 10_000 + '\\"{' * 100})
    assert parse_json(brackets.encode())["text"].startswith("[[[")


@settings(max_examples=100, deadline=None)
@given(huge_ints)
def test_integers_past_64_bits_are_refused(number: int) -> None:
    with pytest.raises(MalformedBody, match="64 bits"):
        parse_json(json.dumps({"user_id": number}).encode())


def test_64_bit_edges_and_constants() -> None:
    assert parse_json(str(INT64_MAX).encode()) == INT64_MAX
    assert parse_json(str(-INT64_MAX - 1).encode()) == -INT64_MAX - 1
    for raw in (b"NaN", b"[Infinity]", b'{"a": -Infinity}', b"9" * 5000):
        with pytest.raises(MalformedBody):
            parse_json(raw)


def test_non_utf8_encodings_are_refused() -> None:
    for raw in ('{"a": "é"}'.encode("utf-16"), b"\xff\xfe{}", '{"a":"é"}'.encode("latin-1")):
        with pytest.raises(MalformedBody) as caught:
            parse_json(raw)
        assert caught.value.error == "invalid_encoding"
