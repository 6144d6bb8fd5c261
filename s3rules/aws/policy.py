"""Every retry, pause and pacing rule s3rules follows on AWS, in one place.

- botocore retries every call but SubmitJob (adaptive mode, ``AWS_MAX_ATTEMPTS`` attempts);
- SubmitJob is sent once per attempt and retried here (``SUBMIT_PAUSES``), because it has no
  idempotency token: a lost answer is first looked for by name (``LISTING_LAG``);
- this process paces its Batch requests below the account's limit (``RateLimit``);
- watching backs off while nothing changes (``Backoff``);
- a Batch job's own attempts come from the ``retries`` settings (``failures.retry_strategy``);
- the submission lease lives ``LEASE_TTL`` seconds unless renewed.
"""
from __future__ import annotations

import os
import threading
import time

from botocore.config import Config

# Ten attempts ride out throttling; AWS_MAX_ATTEMPTS still wins, as botocore users expect.
# (botocore reads "max_attempts" as retries after the first call; "total_max_attempts" counts all)
RETRY_CONFIG = Config(retries={"mode": "adaptive",
                               "total_max_attempts": int(os.environ.get("AWS_MAX_ATTEMPTS", 10))},
                      user_agent_extra="s3rules")
# SubmitJob is not idempotent: botocore must send it exactly once (the Submitter decides what
# a failure means). Adaptive mode still paces requests on the client after throttling.
SUBMIT_CONFIG = Config(retries={"mode": "adaptive", "total_max_attempts": 1}, user_agent_extra="s3rules")
THROTTLING_CODES = ("TooManyRequestsException", "ThrottlingException", "Throttling", "RequestLimitExceeded",
                    "SlowDown")

#: pauses between SubmitJob attempts (seconds); a throttled or lost call waits, then tries again
SUBMIT_PAUSES = (0.5, 1, 2, 4, 8, 16, 30, 30)
#: how long ListJobs may take to show a job just submitted; lookups by name wait this long
LISTING_LAG = 15.0
#: the first status check comes after POLL_START seconds; the interval doubles up to POLL_LIMIT
POLL_START, POLL_LIMIT = 2.0, 30.0
#: a run that dies stops renewing its lease; others take it over after this many seconds
LEASE_TTL = 60.0
#: how long a run waits for another run's lease before it gives up with an error
LEASE_WAIT = 3600.0
#: how long a submission stays in the lease's memory for the next holder
LEASE_RECENT = 900.0

# Batch throttles an account above about 50 requests per second; s3rules keeps its own share
# below that by construction (botocore's adaptive mode only slows down after being throttled).
MAX_REQUESTS_PER_SECOND = float(os.environ.get("S3RULES_BATCH_RPS", 40))


class RateLimit:
    """A token bucket shared by this process's Batch clients: at most ``rate`` requests per
    second on average, bursts of at most ``burst``. Hooked on ``before-send``, so retries count."""

    def __init__(self, rate: float = MAX_REQUESTS_PER_SECOND, burst: float = 5, clock=None, sleep=None):
        self.rate, self.burst = rate, burst
        self.clock, self.sleep = clock or time.monotonic, sleep or time.sleep
        self.tokens, self.at = burst, self.clock()
        self.lock = threading.Lock()

    def wait(self, **_) -> None:
        with self.lock:
            now = self.clock()
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
            self.at = now
            self.tokens -= 1
            pause = -self.tokens / self.rate if self.tokens < 0 else 0.0
        if pause:
            self.sleep(pause)


PACE = RateLimit()


def pace(client) -> None:
    """Make ``client``'s Batch requests wait for the process-wide ``PACE``."""
    client.meta.events.register("before-send.batch", PACE.wait)


class Backoff:
    """Poll interval: starts short, doubles while nothing changes, resets on news."""

    def __init__(self, start: float = POLL_START, limit: float = POLL_LIMIT):
        self.start, self.limit = start, max(start, limit)
        self.interval = start
        self.next_at = 0.0

    def due(self) -> bool:
        return time.monotonic() >= self.next_at

    def wait_time(self) -> float:
        return max(0.0, self.next_at - time.monotonic())

    def polled(self, news: bool) -> None:
        self.interval = self.start if news else min(self.limit, self.interval * 2)
        self.next_at = time.monotonic() + self.interval
