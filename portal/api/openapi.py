"""The OpenAPI 3.1 description served at ``/api/v1/openapi.json``.

The channels a delivery may name, and the chat tools the description lists, are the ones
registered (``channels.transports``, ``integrations.registry.providers``), so the document is
built when asked for.
"""

from __future__ import annotations

from typing import Any

from ..integrations.registry import providers
from ..notifications.transports import transports
from . import openapi_webhooks

_ERROR = {
    "type": "object",
    "required": ["error", "detail"],
    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def spec() -> dict[str, Any]:
    """The description, with the channels and chat tools registered now."""
    tools = ", ".join(str(provider.name) for provider in providers.all())
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Chat Connect notifications API",
            "version": "1.0.0",
            "description": (
                "Queue a notification for one member of your organization. It is delivered as a "
                f"direct message in the member's linked chat tool ({tools}), or by e-mail when "
                "they are not linked. Authenticate with the organization's API key: "
                "`Authorization: Bearer <key>`."
            ),
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"apiKey": []}],
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": _ERROR,
                "NewNotification": {
                    "type": "object",
                    "required": ["title", "body"],
                    "properties": {
                        "recipient_email": {"type": "string", "format": "email", "maxLength": 254},
                        "user_id": {"type": "integer", "minimum": 1},
                        "title": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 300,
                            "description": "One line. Refused (400): control characters (tab and "
                            "line breaks included), U+2028/U+2029, lone surrogates, bidirectional "
                            "override and isolate controls.",
                        },
                        "body": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 10000,
                            "description": "Several lines: newline and tab are kept, CR LF and "
                            "CR become LF. Every other character a title may not hold is refused "
                            "(400).",
                        },
                        "url": {"type": "string", "format": "uri", "maxLength": 2000},
                        "idempotency_key": {
                            "type": "string",
                            "maxLength": 200,
                            "description": "The same key twice returns the first notification; "
                            "nothing is sent twice.",
                        },
                        "sensitive": {
                            "type": "boolean",
                            "description": "Hold until the member confirmed an automatic link.",
                        },
                        "category": {
                            "type": "string",
                            "pattern": "^[a-z][a-z0-9_]{0,39}$",
                            "default": "general",
                            "description": "A key of GET /categories: the company's defaults and "
                            "the member's choices for it decide the channels. Unknown: 422 "
                            "`unknown_category` with `known_categories`.",
                        },
                        "urgent": {
                            "type": "boolean",
                            "default": False,
                            "description": "Time-critical (a reminder an hour before a 1-on-1): "
                            "sent at once, past quiet hours and digests. It does not override a "
                            "category the member or company turned off.",
                        },
                        "ack_requested": {
                            "type": "boolean",
                            "default": False,
                            "description": "Ask the member to confirm they read it: the DM "
                            "carries a 「確認しました」 button (Slack, Teams) or a link to a "
                            "portal page (Chatwork). The first press is recorded as "
                            "`acknowledged_at` and sent as the `notification.acknowledged` "
                            "webhook event.",
                        },
                    },
                    "oneOf": [{"required": ["recipient_email"]}, {"required": ["user_id"]}],
                },
                "Delivery": {
                    "type": "object",
                    "properties": {
                        "channel": {"enum": transports.keys()},
                        "state": {
                            "enum": [
                                "pending",
                                "sending",
                                "retrying",
                                "sent",
                                "failed",
                                "dead",
                                "skipped",
                            ]
                        },
                        "reason": {"type": ["string", "null"]},
                        "attempts": {"type": "integer"},
                        "sent_at": {"type": ["string", "null"], "format": "date-time"},
                        "provider_message_id": {"type": ["string", "null"]},
                        "last_error": {"type": ["string", "null"]},
                    },
                },
                "ChannelKinds": {
                    "type": "object",
                    "properties": {"chat": {"type": "boolean"}, "email": {"type": "boolean"}},
                },
                "Category": {
                    "type": "object",
                    "properties": {
                        "key": {"type": "string"},
                        "label_ja": {"type": "string"},
                        "label_en": {"type": "string"},
                        "description": {"type": "string"},
                        "defaults": {"$ref": "#/components/schemas/ChannelKinds"},
                        "locked": {"$ref": "#/components/schemas/ChannelKinds"},
                    },
                },
                "NewCategory": {
                    "type": "object",
                    "required": ["key", "label_ja", "label_en"],
                    "properties": {
                        "key": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,39}$"},
                        "label_ja": {"type": "string", "minLength": 1, "maxLength": 60},
                        "label_en": {"type": "string", "minLength": 1, "maxLength": 60},
                        "description": {"type": "string", "maxLength": 300},
                    },
                },
                **openapi_webhooks.schemas(),
                "Notification": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer"},
                        "created_at": {"type": "string", "format": "date-time"},
                        "idempotency_key": {"type": ["string", "null"]},
                        "category": {"type": "string"},
                        "urgent": {"type": "boolean"},
                        "ack_requested": {"type": "boolean"},
                        "acknowledged_at": {
                            "type": ["string", "null"],
                            "format": "date-time",
                            "description": "When the member acknowledged it (UTC, `Z`); null "
                            "until then, and always when no acknowledgement was requested.",
                        },
                        "deliveries": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Delivery"},
                        },
                    },
                },
            },
        },
        "webhooks": openapi_webhooks.webhooks(),
        "paths": {
            **openapi_webhooks.paths(),
            "/notifications": {
                "post": {
                    "summary": "Queue a notification",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/NewNotification"}
                            }
                        },
                    },
                    "responses": {
                        "202": {
                            "description": (
                                "Queued (or, for a repeated idempotency key, the original)"
                            ),
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Notification"}
                                }
                            },
                        },
                        "400": _error(
                            "Malformed JSON (not UTF-8, nested deeper than 32 levels, an integer "
                            "outside 64 bits) or invalid fields"
                        ),
                        "401": _error("Missing or unknown API key"),
                        "403": _error("Revoked API key"),
                        "413": _error("Body larger than 64 KiB"),
                        "415": _error("Not JSON"),
                        "422": _error(
                            "No active member matches the recipient, or the category is unknown "
                            "(`unknown_category`, with `known_categories`)"
                        ),
                        "429": _error("Rate limit; see Retry-After"),
                    },
                }
            },
            "/categories": {
                "get": {
                    "summary": "The organization's notification categories",
                    "responses": {
                        "200": {
                            "description": "Every category, in display order",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            "categories": {
                                                "type": "array",
                                                "items": {"$ref": "#/components/schemas/Category"},
                                            }
                                        },
                                    }
                                }
                            },
                        },
                        "401": _error("Missing or unknown API key"),
                        "403": _error("Revoked API key"),
                        "429": _error("Rate limit; see Retry-After"),
                    },
                },
                "post": {
                    "summary": "Add a category (chat by default; the rest is set in the portal)",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/NewCategory"}
                            }
                        },
                    },
                    "responses": {
                        "201": {
                            "description": "Added",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Category"}
                                }
                            },
                        },
                        "400": _error("Malformed JSON, or a bad key or name"),
                        "401": _error("Missing or unknown API key"),
                        "403": _error("Revoked API key"),
                        "409": _error("A category with this key exists"),
                        "413": _error("Body larger than 64 KiB"),
                        "415": _error("Not JSON"),
                        "429": _error("Rate limit; see Retry-After"),
                    },
                },
            },
            "/notifications/{id}": {
                "get": {
                    "summary": "A notification and the state of its deliveries",
                    "parameters": [
                        {
                            "name": "id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "The notification",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Notification"}
                                }
                            },
                        },
                        "401": _error("Missing or unknown API key"),
                        "404": _error(
                            "No such notification in this organization (also for ids outside"
                            " 1 … 2^31−1)"
                        ),
                    },
                }
            },
        },
    }
