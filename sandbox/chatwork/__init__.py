"""Stand-in for www/oauth/api.chatwork.com: client registration, OAuth 2.0 + PKCE, API v2."""
