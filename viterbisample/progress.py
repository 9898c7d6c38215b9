"""Progress on stderr, for ``vsample encode`` and for training: a live line while work
runs, and one line per finished step.

On a terminal the live line is redrawn in place (at most five times a second) and each
finished step leaves a line with the time since the start.  A callable instead receives
the finished steps' lines only; ``Progress(False)`` shows nothing, and neither does
``Progress()`` when stderr is not a terminal.  Nothing goes to stdout.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, TextIO


class Progress:
    def __init__(self, show: bool | Callable[[str], None] | None = None, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.sink = show if callable(show) else None
        self.tty = self.stream.isatty()
        self.enabled = bool(show) if show is not None and not callable(show) else self.tty
        self.start = time.monotonic()
        self.last_live = 0.0
        self.live_shown = False

    def _stamp(self) -> str:
        return f"[{time.monotonic() - self.start:7.1f}s]"

    def live(self, text: str, force: bool = True) -> None:
        """Show what is running now (a terminal only); ``force=False`` rate-limits."""
        if not self.enabled or self.sink is not None or not self.tty:
            return
        now = time.monotonic()
        if not force and now - self.last_live < 0.2:
            return
        self.last_live = now
        self.stream.write(f"\r\x1b[2K{self._stamp()} {text}")
        self.stream.flush()
        self.live_shown = True

    def throughput(self, bytes_done: int, tokens_done: int, total_bytes: int | None = None,
                   final: bool = False) -> None:
        """The live line of an encoding run: bytes (and share of ``total_bytes``), MB/s,
        tokens and tokens/s.  ``final`` marks the end of the input: the line is shown
        whatever the rate limit, at 100.0% (total known or not); before it the share is
        at most 99.9%, so that 100% always means done."""
        if not self.enabled or self.sink is not None or not self.tty:
            return
        dt = max(time.monotonic() - self.start, 1e-9)
        share = f" {share_percent(bytes_done, total_bytes, final):5.1f}%" if total_bytes or final else ""
        self.live(
            f"{bytes_done / 1e6:10.1f} MB{share}  {bytes_done / dt / 1e6:7.1f} MB/s  "
            f"{tokens_done:>14,} tokens  {tokens_done / dt / 1e6:6.2f} M tokens/s",
            force=final,
        )

    def close(self) -> None:
        """End the live line, if one is shown, with a newline."""
        if self.live_shown:
            self.stream.write("\n")
            self.stream.flush()
            self.live_shown = False

    def done(self, text: str) -> None:
        """A finished step: a line of its own."""
        if self.sink is not None:
            self.sink(text)
            return
        if not self.enabled:
            return
        prefix = "\r\x1b[2K" if self.live_shown else ""
        self.stream.write(f"{prefix}{self._stamp()} {text}\n")
        self.stream.flush()
        self.live_shown = False


def share_percent(done: int, total: int | None, final: bool) -> float:
    """The share of ``total`` that ``done`` is, in percent, rounded down to 0.1: 100.0
    when ``final``, else at most 99.9 (an input can grow while it is read, or be
    of unknown size: ``total`` None or 0).

    >>> share_percent(999, 1000, False), share_percent(1001, 1000, False), share_percent(7, None, True)
    (99.9, 99.9, 100.0)
    """
    if final:
        return 100.0
    if not total:
        return 0.0
    return min(999, 1000 * done // total) / 10
