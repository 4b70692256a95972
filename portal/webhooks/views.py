"""「Webhook」 settings: endpoints, their secret (shown once), rotation, tests and attempt log."""

from __future__ import annotations

from flask import Blueprint

from . import models  # noqa: F401  (the tables, for the app and its migrations)

bp = Blueprint("webhooks", __name__)
