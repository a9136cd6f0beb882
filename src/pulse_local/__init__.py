"""pulse-local: the Pulse Analytics pipeline, local-first."""
