"""A tiny dependency-free progress bar for downloads and training loops.

Usage::

    with Progress(total=n_bytes, desc="ml-1m.zip", unit="B") as bar:
        for chunk in chunks:
            bar.update(len(chunk))

It draws on one line of ``stream`` (default ``sys.stderr``) with ``\\r``, at most about ten
times a second, and prints nothing at all when disabled. ``enabled=None`` (the default)
means "only when the stream is a terminal".
"""
from __future__ import annotations

import sys
import time

__all__ = ["Progress", "format_size"]

_MIN_INTERVAL = 0.1  # seconds between redraws


def format_size(n: float, unit: str = "B") -> str:
    """Human-readable count: bytes as ``12.3 MB`` (powers of 1024), others as ``12.3k``."""
    n = float(n)
    if unit == "B":
        for prefix in ("", "K", "M", "G", "T"):
            if abs(n) < 1024 or prefix == "T":
                return f"{n:.0f} {prefix}B" if prefix == "" else f"{n:.1f} {prefix}B"
            n /= 1024
    for prefix in ("", "k", "M", "G"):
        if abs(n) < 1000 or prefix == "G":
            return f"{n:.0f}{prefix}" if prefix == "" else f"{n:.1f}{prefix}"
        n /= 1000
    return str(n)  # pragma: no cover


def _format_time(seconds: float) -> str:
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h:d}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Progress:
    """A one-line progress bar.

    Parameters
    ----------
    total : int or None
        Expected number of units; None when unknown (no percentage is shown then).
    desc : str
        Label printed before the bar.
    unit : str
        ``"B"`` formats counts and rates as bytes (KB, MB, ...); anything else is a plain
        count suffix (``"it"``, ``"ratings"``, ``"batch"``...).
    enabled : bool or None
        None: draw only when ``stream.isatty()``. True forces drawing, False silences it.
    stream : text stream, default ``sys.stderr`` (looked up at construction time).
    """

    def __init__(self, total, desc: str = "", unit: str = "it", enabled=None, stream=None):
        self.total = None if total is None else int(total)
        self.desc = desc
        self.unit = unit
        self.stream = sys.stderr if stream is None else stream
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            try:
                enabled = bool(isatty()) if isatty is not None else False
            except (ValueError, OSError):  # closed stream
                enabled = False
        self.enabled = bool(enabled)
        self.n = 0
        self.postfix = ""
        self.start = time.perf_counter()
        self._last_draw = -1.0
        self._last_len = 0
        self.closed = False

    # ---- public API ----------------------------------------------------------------------
    def update(self, n: int = 1) -> None:
        """Advance by ``n`` units; redraws if at least 0.1 s passed since the last redraw."""
        self.n += n
        if self.enabled:
            now = time.perf_counter()
            if now - self._last_draw >= _MIN_INTERVAL:
                self._draw(now)

    def set_postfix(self, text) -> None:
        """Text shown after the counters (e.g. ``"loss=0.8123"``)."""
        self.postfix = str(text)
        if self.enabled:
            now = time.perf_counter()
            if now - self._last_draw >= _MIN_INTERVAL:
                self._draw(now)

    def close(self) -> None:
        """Draw the final state and end the line. Safe to call twice."""
        if self.closed:
            return
        self.closed = True
        if self.enabled:
            self._draw(time.perf_counter())
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- drawing -------------------------------------------------------------------------
    def render(self, now: float | None = None) -> str:
        """The text of the bar at time ``now`` (``time.perf_counter()`` scale)."""
        now = time.perf_counter() if now is None else now
        elapsed = max(now - self.start, 0.0)
        rate = self.n / elapsed if elapsed > 0 else 0.0
        if self.unit == "B":
            count = format_size(self.n, "B")
            total = format_size(self.total, "B") if self.total is not None else "?"
            speed = f"{format_size(rate, 'B')}/s"
        else:
            count = f"{self.n:,}"
            total = f"{self.total:,}" if self.total is not None else "?"
            speed = f"{format_size(rate, '')} {self.unit}/s"
        parts = [f"{self.desc}: " if self.desc else ""]
        if self.total:
            frac = min(max(self.n / self.total, 0.0), 1.0)
            width = 20
            filled = int(frac * width)
            parts.append(f"{frac * 100:3.0f}% [{'#' * filled}{'.' * (width - filled)}] ")
        parts.append(f"{count}/{total} {speed} {_format_time(elapsed)}")
        if self.postfix:
            parts.append(f" {self.postfix}")
        return "".join(parts)

    def _draw(self, now: float) -> None:
        text = self.render(now)
        pad = " " * max(0, self._last_len - len(text))
        self.stream.write("\r" + text + pad)
        self.stream.flush()
        self._last_len = len(text)
        self._last_draw = now
