"""The webhook parts of the OpenAPI 3.1 description: the ``/webhook-endpoints`` paths, and the
``webhooks`` section — one entry per event type, built from ``webhooks.events.TYPES`` so the
document lists exactly what is sent."""

from __future__ import annotations

from typing import Any

from ..webhooks.events import CONTENT, TEST, TYPES

_ID_PARAMETER = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
}
_HEADERS = [
    {
        "name": "webhook-id",
        "in": "header",
        "required": True,
        "schema": {"type": "string"},
        "description": "The event's id, the same on every retry: ignore one you already processed.",
    },
    {
        "name": "webhook-timestamp",
        "in": "header",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
        "description": "Seconds since the epoch when this attempt was signed; refuse old ones.",
    },
    {
        "name": "webhook-signature",
        "in": "header",
        "required": True,
        "schema": {"type": "string"},
        "description": "Space-separated `v1,<base64 HMAC-SHA256>` of "
        "`webhook-id.webhook-timestamp.body` with the endpoint's secret (without `whsec_`, "
        "base64-decoded): two during a rotation. Verify with a Standard Webhooks library.",
    },
]


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json({"$ref": "#/components/schemas/Error"}, description)


def schemas() -> dict[str, Any]:
    endpoint_fields: dict[str, Any] = {
        "url": {
            "type": "string",
            "format": "uri",
            "maxLength": 2000,
            "description": "https only; refused (400) when it resolves to a loopback, private, "
            "link-local (cloud metadata), multicast or reserved address.",
        },
        "description": {"type": "string", "maxLength": 200},
        "event_types": {
            "type": "array",
            "minItems": 1,
            "items": {"enum": list(TYPES)},
            "uniqueItems": True,
        },
        "include_content": {
            "type": "boolean",
            "default": False,
            "description": "Notification events carry `data.content` (title, body, url).",
        },
    }
    return {
        "NewWebhookEndpoint": {
            "type": "object",
            "required": ["url", "event_types"],
            "properties": endpoint_fields,
            "additionalProperties": False,
        },
        "WebhookEndpointChange": {
            "type": "object",
            "properties": {**endpoint_fields, "enabled": {"type": "boolean"}},
            "additionalProperties": False,
        },
        "WebhookEndpoint": {
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                **endpoint_fields,
                "enabled": {"type": "boolean"},
                "disabled_reason": {"type": ["string", "null"], "enum": ["admin", "gone", None]},
                "previous_secret_valid_until": {"type": ["string", "null"], "format": "date-time"},
                "created_at": {"type": "string", "format": "date-time"},
                "secret": {
                    "type": "string",
                    "pattern": "^whsec_",
                    "description": "Only in the answers to POST and rotate-secret.",
                },
            },
        },
    }


def paths() -> dict[str, Any]:
    endpoint = _json({"$ref": "#/components/schemas/WebhookEndpoint"}, "The endpoint")
    missing = _error("No such webhook endpoint in this organization")
    unauthorized = _error("Missing or unknown API key")
    return {
        "/webhook-endpoints": {
            "get": {
                "summary": "The organization's webhook endpoints",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "endpoints": {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/WebhookEndpoint"},
                                }
                            },
                        },
                        "The endpoints",
                    ),
                    "401": unauthorized,
                },
            },
            "post": {
                "summary": "Add an endpoint; the answer holds its signing secret, this once",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/NewWebhookEndpoint"}
                        }
                    },
                },
                "responses": {
                    "201": endpoint,
                    "400": _error("A bad field (the detail names it)"),
                    "401": unauthorized,
                    "409": _error("The organization has the most endpoints it may have"),
                    "413": _error("Body too large"),
                    "415": _error("Not JSON"),
                },
            },
        },
        "/webhook-endpoints/{id}": {
            "parameters": [_ID_PARAMETER],
            "get": {
                "summary": "One endpoint",
                "responses": {"200": endpoint, "401": unauthorized, "404": missing},
            },
            "patch": {
                "summary": "Change an endpoint, or turn it on or off",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/WebhookEndpointChange"}
                        }
                    },
                },
                "responses": {
                    "200": endpoint,
                    "400": _error("A bad field"),
                    "401": unauthorized,
                    "404": missing,
                    "413": _error("Body too large"),
                    "415": _error("Not JSON"),
                },
            },
            "delete": {
                "summary": "Delete an endpoint with its queue and log",
                "responses": {
                    "204": {"description": "Deleted"},
                    "401": unauthorized,
                    "404": missing,
                },
            },
        },
        "/webhook-endpoints/{id}/rotate-secret": {
            "parameters": [_ID_PARAMETER],
            "post": {
                "summary": "A new signing secret; the previous one signs too for 24 hours",
                "responses": {"200": endpoint, "401": unauthorized, "404": missing},
            },
        },
        "/webhook-endpoints/{id}/test": {
            "parameters": [_ID_PARAMETER],
            "post": {
                "summary": f"Queue a `{TEST}` event for this endpoint alone",
                "responses": {
                    "202": _json(
                        {
                            "type": "object",
                            "properties": {
                                "webhook_id": {"type": "string"},
                                "type": {"const": TEST},
                            },
                        },
                        "Queued",
                    ),
                    "401": unauthorized,
                    "404": missing,
                },
            },
        },
    }


def webhooks() -> dict[str, Any]:
    """One entry per event type: the POST your endpoint receives."""
    section = {}
    for key, event_type in TYPES.items():
        properties = dict(event_type.fields)
        if "delivery_id" in properties:
            properties[CONTENT] = {
                "type": "object",
                "description": "Only for endpoints with include_content.",
                "properties": {
                    "title": {"type": "string"},
                    "body": {"type": "string"},
                    "url": {"type": ["string", "null"]},
                },
            }
        section[key] = {
            "post": {
                "summary": str(event_type.label),
                "parameters": _HEADERS,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["type", "timestamp", "data"],
                                "properties": {
                                    "type": {"const": key},
                                    "timestamp": {"type": "string", "format": "date-time"},
                                    "data": {
                                        "type": "object",
                                        "properties": properties,
                                        "required": sorted(event_type.fields),
                                    },
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "2XX": {
                        "description": "Received. Anything else is retried after 5 s, 5 min, "
                        "30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h."
                    },
                    "410": {"description": "Gone: the endpoint is turned off and the admins told."},
                },
            }
        }
    return section
