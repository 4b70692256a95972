"""A member's own page: connected accounts and recent deliveries."""

from flask import Blueprint

bp = Blueprint("me", __name__)

from . import views  # noqa: E402,F401
