"""Chat providers, registered explicitly: one package each, one import line below.

A provider package (``slack/``, ``chatwork/``, ``teams/``; README "Adding a provider"):

- ``__init__.py``: the ``ChatProvider`` subclass, decorated with ``@providers.register``. It is
  the one place that says the provider's key, name, order, URL settings and other settings
  (read by ``config.py``), consent pages (the CSP), coverage reasons and page context;
- ``client.py``: its ``ChatClient`` (DMs, directory, revoke), errors mapped to ``ProviderError``;
- ``setup.py``: the wizard's steps (``integrations/wizard.py``; the OAuth pair in ``oauth.py``)
  and ``build_connection``;
- ``templates/``: ``_step_<name>.html`` per step with its own partial, and optionally
  ``_connected.html`` / ``_matching.html`` on its connected page, served as
  ``integrations/providers/<key>/…``;
- ``views.py`` and ``inbound.py`` only when it receives events or has pages of its own.
"""

from ..registry import providers
from . import chatwork, slack, teams  # noqa: F401  (registers the three providers)

__all__ = ["providers"]
