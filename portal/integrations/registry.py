"""The provider registry: explicit, keyed on ``ChatProvider.key``, refusing duplicates.

It also serves each provider's templates from its own package: a template named
``integrations/providers/<key>/<name>`` is ``<name>`` in that provider's ``templates/`` folder
(:class:`ProviderTemplates`, added to the app's Jinja loader by the factory).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from flask import abort
from jinja2 import BaseLoader, Environment, FileSystemLoader, TemplateNotFound

if TYPE_CHECKING:  # every provider module imports this one to register itself
    from .providers.base import ChatProvider, Setting, URLSetting

#: Where provider templates are named from, so existing template names keep resolving.
TEMPLATE_PREFIX = "integrations/providers/"


class ProviderRegistry:
    def __init__(self) -> None:
        self._providers: dict[str, ChatProvider] = {}

    def register(self, cls: type[ChatProvider]) -> type[ChatProvider]:
        """Class decorator: add one instance of ``cls`` under its key."""
        if cls.key in self._providers:
            raise ValueError(f"provider {cls.key!r} registered twice")
        self._providers[cls.key] = cls()
        return cls

    def unregister(self, key: str) -> None:
        """Take a provider away again (a test's provider, registered for that test only)."""
        self._providers.pop(key, None)

    def get(self, key: str) -> ChatProvider | None:
        return self._providers.get(key)

    def get_or_404(self, key: str) -> ChatProvider:
        provider = self._providers.get(key)
        if provider is None:
            abort(404)
        return provider

    def all(self) -> Iterator[ChatProvider]:
        """Every provider, in ``ChatProvider.order`` (the vendor's help page: Slack first)."""
        return iter(sorted(self._providers.values(), key=lambda p: (p.order, p.key)))

    def keys(self) -> list[str]:
        return [provider.key for provider in self.all()]

    def url_settings(self) -> list[URLSetting]:
        """Every provider's URL settings, in provider order."""
        return [setting for provider in self.all() for setting in provider.url_settings]

    def settings(self) -> list[Setting]:
        """Every provider's other settings, in provider order."""
        return [setting for provider in self.all() for setting in provider.settings]

    def template_loader(self) -> ProviderTemplates:
        """A Jinja loader for every registered provider's own templates."""
        return ProviderTemplates(self.get)


class ProviderTemplates(BaseLoader):
    """``integrations/providers/<key>/<name>`` → ``<name>`` in the provider's template folder."""

    def __init__(self, lookup: Callable[[str], ChatProvider | None]) -> None:
        self.lookup = lookup

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        key, _, name = template.removeprefix(TEMPLATE_PREFIX).partition("/")
        provider = self.lookup(key) if template.startswith(TEMPLATE_PREFIX) else None
        if provider is None or not name:
            raise TemplateNotFound(template)
        return FileSystemLoader(provider.template_folder()).get_source(environment, name)


providers = ProviderRegistry()
