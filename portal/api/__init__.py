"""The JSON API the host SaaS calls: ``/api/v1/notifications``, ``/api/v1/categories``,
``/api/v1/webhook-endpoints``."""

from flask import Blueprint

from ..extensions import csrf

bp = Blueprint("api", __name__, url_prefix="/api/v1")
# Bearer-key authentication, no cookies: CSRF does not apply (reliability.md PT-22 allow-list).
csrf.exempt(bp)

from . import views, webhooks  # noqa: E402,F401
