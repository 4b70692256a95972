"""The chat tools offered on 外部ツールの連携, in the order the vendor's help page lists them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CatalogEntry:
    key: str
    name: str


CATALOG: tuple[CatalogEntry, ...] = (
    CatalogEntry("slack", "Slack"),
    CatalogEntry("chatwork", "Chatwork"),
    CatalogEntry("teams", "Microsoft Teams"),
)
