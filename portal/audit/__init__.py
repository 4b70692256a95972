"""The audit log: registry of actions, the record() service and the log page."""

from flask import Blueprint

bp = Blueprint("audit", __name__)

from . import views  # noqa: E402,F401
