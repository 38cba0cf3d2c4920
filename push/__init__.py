"""Web Push: notify members who are offline of new messages (RFC 8030, 8291, 8292)."""
