"""Who may call what: keys and JWT (``auth``), request rules and the
per-request admission (``control``), rate and concurrency limits in memory
(``limits``) or shared through Redis (``redis_limits``)."""
