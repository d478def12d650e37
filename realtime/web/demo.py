"""Demo mode's sign-in: any display name becomes a valid user id, tokens are signed with the
node's own ephemeral key (never REALTIME_JWT_SECRET), and /demo/token is rate-limited."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
import unicodedata
from dataclasses import dataclass, field

# Names shown on the page are free text; ids must be 1-128 of A-Z a-z 0-9 _ . : @ -.
MAX_SLUG = 40
# /demo/token per client address: this many a second on average, bursts of BURST.
RATE = 2.0
BURST = 10.0
# Addresses remembered for rate limiting (the oldest are forgotten first).
MAX_ADDRESSES = 10_000


def user_id_for(name: str) -> str:
    """`Zoë Müller` -> `zoe-muller-5d7c2a`: readable, valid, and the same for the same name
    (so signing in again on another device finds the same jobs)."""
    clean = " ".join(name.split())
    ascii_ = unicodedata.normalize("NFKD", clean).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_.lower()).strip("-")[:MAX_SLUG].strip("-")
    digest = hashlib.sha256(clean.casefold().encode()).hexdigest()[:6]
    return f"{slug or 'user'}-{digest}"


def demo_key() -> str:
    """A signing key of this node alone, made at start."""
    return secrets.token_urlsafe(32)


class TokenBucket:
    """`rate` events a second on average, bursts up to `burst`."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@dataclass
class PerAddress:
    """One bucket per client address, bounded in memory."""

    rate: float = RATE
    burst: float = BURST
    buckets: dict[str, TokenBucket] = field(default_factory=dict)

    def take(self, address: str) -> bool:
        bucket = self.buckets.pop(address, None) or TokenBucket(self.rate, self.burst)
        self.buckets[address] = bucket  # most recent last
        if len(self.buckets) > MAX_ADDRESSES:
            self.buckets.pop(next(iter(self.buckets)))
        return bucket.take()
