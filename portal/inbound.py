"""Request bodies that strangers send: size-bounded as read, parsed with limits, shape-checked.

One mechanism for every route that reads a body (issue 12):

- **Size.** Every request gets a byte limit before anything reads its body: the view's own
  (``@json_endpoint(limit=…)``, ``@body_limit(…)``) or ``DEFAULT_BODY_LIMIT``. Flask hands the
  limit to Werkzeug's ``LimitedStream``, which counts the bytes actually read, so a chunked
  body without ``Content-Length`` is cut off at the limit; :func:`read_body` answers it 413
  like a declared one.
- **Parsing.** :func:`parse_json` accepts UTF-8 JSON only, no deeper than ``MAX_JSON_DEPTH``
  (checked by a linear scan *before* the recursive parser runs, so ``[[[[…`` never reaches
  it), without ``NaN``/``Infinity``, and with integers inside the signed 64-bit range, since
  every integer we read ends up compared with a database column.
- **Shape.** :func:`validate` checks a parsed payload against a JSON Schema of the fields the
  handler reads (Draft 2020-12, compiled once); handlers then read typed values only.
- **Errors.** Views marked ``@json_endpoint`` get their 4xx as ``{"error", "detail"}`` JSON
  (the API's format), including the 413 raised by the stream.

Authentication comes first: callers verify a signature or token over the raw bytes (or the
headers) and only then call :func:`parse_json`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from flask import Flask, abort, current_app, request
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from werkzeug.exceptions import RequestEntityTooLarge

#: Forms and everything undecorated: far above any form of ours, far below a memory problem.
DEFAULT_BODY_LIMIT = 1024 * 1024
#: Slack events, Bot Framework activities and API bodies nest a few levels; 32 is generous.
MAX_JSON_DEPTH = 32
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

F = TypeVar("F", bound=Callable[..., Any])

# A JSON string: a quote, then non-quote non-backslash characters or escapes, then a quote.
# Linear (the alternatives cannot both match at one position), so no catastrophic backtracking.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class MalformedBody(ValueError):
    """The body is not acceptable JSON; ``error`` is a stable code, ``detail`` says why."""

    def __init__(self, error: str, detail: str) -> None:
        super().__init__(detail)
        self.error = error
        self.detail = detail


def body_limit(limit: int) -> Callable[[F], F]:
    """Let this view read at most ``limit`` bytes of body (instead of ``DEFAULT_BODY_LIMIT``)."""

    def mark(view: F) -> F:
        view.body_limit = limit  # type: ignore[attr-defined]
        return view

    return mark


def json_endpoint(limit: int) -> Callable[[F], F]:
    """A machine endpoint: at most ``limit`` bytes of body, and errors answered as JSON."""

    def mark(view: F) -> F:
        view.body_limit = limit  # type: ignore[attr-defined]
        view.json_errors = True  # type: ignore[attr-defined]
        return view

    return mark


def _view() -> Any:
    return current_app.view_functions.get(request.endpoint or "")


def wants_json_errors() -> bool:
    """Whether this request's errors are answered as JSON (the API and inbound endpoints)."""
    return request.path.startswith("/api/") or bool(getattr(_view(), "json_errors", False))


def _guard_request() -> None:
    """Runs before every other hook, so nothing reads the stream before the limit is set."""
    view = _view()
    request.max_content_length = getattr(view, "body_limit", DEFAULT_BODY_LIMIT)
    # NUL is in no name, search or id anyone types, and PostgreSQL refuses it in text: a
    # `?q=%00` would otherwise reach the database and fail there.
    values = list(request.args.values())
    if request.mimetype in FORM_TYPES and not getattr(view, "json_errors", False):
        values += request.form.values()
        _refuse_filled_stream()
    if any("\x00" in value for value in values):
        abort(400)


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def init_app(app: Flask) -> None:
    app.before_request_funcs.setdefault(None, []).insert(0, _guard_request)


def _depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in ``raw``, ignoring brackets inside strings.

    Unbalanced input only over-counts (a closing bracket missing), which rejects input the
    parser would reject anyway.
    """
    depth = deepest = 0
    for byte in _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS):
        if byte in b"[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_JSON_DEPTH:
                    break
        else:
            depth -= 1
    return deepest


def _no_constant(name: str) -> None:
    raise MalformedBody("invalid_json", f"{name} is not a JSON number.")


def _bounded_int(text: str) -> int:
    # Python would accept a 4,000-digit integer; no column of ours holds one.
    if len(text) > 20 or not INT64_MIN <= (value := int(text)) <= INT64_MAX:
        raise MalformedBody("invalid_json", "Integers must fit in 64 bits.")
    return value


def parse_json(raw: bytes) -> Any:
    """``raw`` as JSON, or :class:`MalformedBody` (never another exception)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedBody("invalid_encoding", "The body must be UTF-8 encoded JSON.") from None
    if _depth(raw) > MAX_JSON_DEPTH:
        raise MalformedBody("too_deep", f"JSON may nest at most {MAX_JSON_DEPTH} levels.")
    try:
        return json.loads(text, parse_constant=_no_constant, parse_int=_bounded_int)
    except MalformedBody:
        raise
    except (ValueError, RecursionError):
        raise MalformedBody("invalid_json", "The body is not valid JSON.") from None


def read_body() -> bytes:
    """This request's body, or 413 when it is larger than the view's limit.

    Werkzeug stops a chunked body at the limit without an error (the next read would raise),
    so a body without ``Content-Length`` that filled the limit is treated as over it.
    """
    data = request.get_data(cache=True)
    _refuse_filled_stream()
    return data


def _refuse_filled_stream() -> None:
    """413 if a body without ``Content-Length`` was read up to the limit (so it was cut)."""
    if request.content_length is None and getattr(request.stream, "is_exhausted", False):
        raise RequestEntityTooLarge()


def read_json() -> Any:
    """This request's body, read within its limit (413 beyond it), parsed by :func:`parse_json`."""
    return parse_json(read_body())


def schema(definition: Mapping[str, Any]) -> Draft202012Validator:
    """A module-level JSON Schema, checked and compiled once, at import."""
    Draft202012Validator.check_schema(definition)
    return Draft202012Validator(definition)


def validate(payload: Any, checker: Draft202012Validator) -> None:
    """Raise :class:`MalformedBody` (``invalid_payload``) unless ``payload`` fits the schema."""
    error = best_match(checker.iter_errors(payload))
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "(root)"
        # The validator's message quotes the value: keep it short, it may be the sender's.
        raise MalformedBody("invalid_payload", f"{where}: {error.message}"[:300])
