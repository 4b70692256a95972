"""Views of 外部ツールの連携: overview cards, provider pages and wizard, linking, inbound events."""

from . import invitations, members, overview, setup, transfer  # noqa: F401
