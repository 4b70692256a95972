"""Support console: read-only, across organizations; every organization view is audited."""

from flask import Blueprint

bp = Blueprint("support", __name__)

from . import events, views  # noqa: E402,F401
