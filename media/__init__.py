"""Audio handling independent of storage and transport: probing uploads, signing URLs."""
