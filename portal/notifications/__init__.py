"""The notification pipeline: what the host SaaS asks to send, and its deliveries."""

from flask import Blueprint

bp = Blueprint("notifications", __name__)

from . import views  # noqa: E402,F401
