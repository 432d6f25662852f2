"""Model families: one folder each, registered by one line in mediagen.registry."""
