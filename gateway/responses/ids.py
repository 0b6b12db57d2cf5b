"""Object ids as OpenAI shapes them: a type prefix and 48 random hex digits."""

from __future__ import annotations

import secrets


def new_id(prefix: str) -> str:
    """``resp_...``, ``msg_...``, ``fc_...``, ``rs_...``, ``conv_...``."""
    return f"{prefix}_{secrets.token_hex(24)}"
