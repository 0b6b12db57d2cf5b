"""Where a request goes: the router (fallback chain, retries), load balancing,
per-target health (breaker, admission, health checks) and the routing
table's build and reload."""
