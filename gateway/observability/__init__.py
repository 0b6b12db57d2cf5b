"""What the gateway reports: access logs, metrics (its own and its engines'),
the audit log and tracing, tied together per request by ``telemetry``."""
