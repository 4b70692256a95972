"""The notification pipeline: what the host SaaS asks to send, and its deliveries."""
