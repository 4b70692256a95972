"""Connecting chat tools (外部ツールの連携) and linking members to chat accounts."""

from flask import Blueprint

bp = Blueprint("integrations", __name__)

from . import views  # noqa: E402,F401
