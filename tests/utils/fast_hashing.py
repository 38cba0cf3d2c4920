"""argon2id at its cheapest for the suite's apps: hundreds of registrations and logins would
otherwise spend minutes of CPU on the production cost (64 MiB, 3 passes). The hashes are
still real salted argon2id, made and checked by the same code; tests/resolvers/test_passwords.py
checks the production defaults themselves."""

from __future__ import annotations

TIME_COST = 1
MEMORY_KIB = 1024

# Keyword arguments of api.settings.Settings, and the same as environment variables.
SETTINGS = {"password_hash_time_cost": TIME_COST, "password_hash_memory_kib": MEMORY_KIB}
ENV = {name.upper(): str(value) for name, value in SETTINGS.items()}
