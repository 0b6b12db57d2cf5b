"""Response caching: exact (the normalized request and the caller's scope)
and semantic (embedding similarity of the last question), in memory or in
Redis. ``service`` is the entry point; ``keys`` and ``store`` are its parts;
``semantic`` embeds through the router."""
