"""Raw formats -> records of the shared schema: one module per source."""
