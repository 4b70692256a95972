"""Outbound webhooks to the host SaaS (issue 17): Standard Webhooks signing (``signing.py``)
and the guard that keeps an endpoint from pointing the worker at internal addresses
(``addresses.py``). Endpoints, events and their delivery through the outbox come next."""
