"""A user's own pages: connected accounts, recent deliveries, two-step verification."""

from flask import Blueprint

bp = Blueprint("me", __name__)

from . import security, views  # noqa: E402,F401
