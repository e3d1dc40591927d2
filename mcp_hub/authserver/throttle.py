"""Slows password guessing on the sign-in page: after MAX_FAILURES wrong passwords for one user name from
one client address within WINDOW, that pair is refused until the window has passed. Counted per process
(several instances each count their own); scrypt already makes every guess cost ~0.1 s of CPU."""

from __future__ import annotations

import time
from collections import deque

MAX_FAILURES = 10
WINDOW_SECONDS = 15 * 60
MAX_TRACKED = 10_000


class SignInThrottle:
    def __init__(self, max_failures: int = MAX_FAILURES, window: float = WINDOW_SECONDS) -> None:
        self.max_failures = max_failures
        self.window = window
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        failures = self._failures.get(key, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures

    def blocked(self, name: str, address: str) -> bool:
        return len(self._recent((name, address), time.monotonic())) >= self.max_failures

    def failed(self, name: str, address: str) -> None:
        now = time.monotonic()
        if len(self._failures) >= MAX_TRACKED:
            # Forget the pairs with nothing recent first; bounded memory under a spray of names.
            self._failures = {k: v for k, v in self._failures.items() if self._recent(k, now)}
            if len(self._failures) >= MAX_TRACKED:
                self._failures.pop(next(iter(self._failures)))
        failures = self._recent((name, address), now)
        failures.append(now)
        self._failures[(name, address)] = failures

    def succeeded(self, name: str, address: str) -> None:
        self._failures.pop((name, address), None)
