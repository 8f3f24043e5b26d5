"""Type aliases shared across kurz."""

from collections.abc import Callable

# Seconds since the epoch, like time.time; injected so that tests control time.
Clock = Callable[[], float]
