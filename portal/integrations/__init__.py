"""Connecting chat tools (外部ツールの連携) and linking members to chat accounts."""

from flask import Blueprint

bp = Blueprint("integrations", __name__)

# The provider packages add their own routes (inbound endpoints, pages) to ``bp`` too.
from . import providers, views  # noqa: E402,F401
