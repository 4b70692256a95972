"""Stand-in for Microsoft: Entra ID (admin consent, tokens, OpenID metadata), Graph /users,
Bot Framework channel keys and the Bot Connector service."""
