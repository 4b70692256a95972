"""Stand-in for slack.com: OAuth v2 install, the Web API methods the portal uses, Events API."""
