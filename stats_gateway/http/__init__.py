"""The thin HTTP layer: routes, error envelope, request logging."""
