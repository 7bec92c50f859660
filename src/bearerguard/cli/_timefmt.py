"""Human-readable times for `bearerguard check`: UTC instants and coarse durations."""

from __future__ import annotations

from datetime import UTC, datetime

_UNITS = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))


def utc(timestamp: float) -> str:
    """`2024-05-01 09:57:00 UTC`; a time outside what `datetime` can show is given in seconds."""
    try:
        return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return f"{timestamp:g} s since 1970"


def duration(seconds: float) -> str:
    """The largest unit and the next one, rounded down: `2 h 3 min`, `4 min 59 s`, `3 d`."""
    rest = int(abs(seconds))
    first = next((i for i, (_, size) in enumerate(_UNITS) if rest >= size), len(_UNITS) - 1)
    parts: list[str] = []
    for unit, size in _UNITS[first : first + 2]:
        count, rest = divmod(rest, size)
        if count or not parts:
            parts.append(f"{count} {unit}")
    return " ".join(parts)


def relative(delta: float) -> str:
    """A signed offset from now: `in 4 min 59 s`, `2 h 3 min ago`."""
    return f"in {duration(delta)}" if delta > 0 else f"{duration(delta)} ago"


def short_duration(value: float) -> str:
    """A short wait to a tenth of a second (`duration` rounds to whole seconds)."""
    return f"{value:.1f}".removesuffix(".0") + " s" if value < 60 else duration(value)
