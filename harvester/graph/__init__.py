"""Speaks to Meta: the HTTP client, its error tree, reply parsers, batching, rate gate and retry."""
