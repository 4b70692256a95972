"""Chat providers, registered explicitly.

Adding a provider:
1. Create ``providers/<key>.py`` with a ``ChatProvider`` subclass decorated with
   ``@providers.register`` and its client class.
2. Import the module below.
3. Add its step templates under ``templates/integrations/providers/<key>/``.
4. Add its config keys to ``config.py`` and ``.env.example``.
5. Add ``tests/integrations/test_<key>_setup.py``; the contract test covers the rest.
"""

from ..registry import providers
from . import chatwork, slack, teams  # noqa: F401  (registers the three providers)

__all__ = ["providers"]
