"""Views of 外部ツールの連携: overview cards, provider pages and wizard, linking, inbound events."""

from . import events, members, overview, setup  # noqa: F401
