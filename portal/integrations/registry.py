"""The provider registry: explicit, keyed on ``ChatProvider.key``, refusing duplicates."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from flask import abort

if TYPE_CHECKING:  # providers/__init__.py imports this module to register the providers
    from .providers.base import ChatProvider


class ProviderRegistry:
    def __init__(self) -> None:
        self._providers: dict[str, ChatProvider] = {}

    def register(self, cls: type[ChatProvider]) -> type[ChatProvider]:
        """Class decorator: add one instance of ``cls`` under its key."""
        if cls.key in self._providers:
            raise ValueError(f"provider {cls.key!r} registered twice")
        self._providers[cls.key] = cls()
        return cls

    def get(self, key: str) -> ChatProvider | None:
        return self._providers.get(key)

    def get_or_404(self, key: str) -> ChatProvider:
        provider = self._providers.get(key)
        if provider is None:
            abort(404)
        return provider

    def all(self) -> Iterator[ChatProvider]:
        return iter(self._providers.values())

    def keys(self) -> list[str]:
        return list(self._providers)


providers = ProviderRegistry()
