"""Framework settings (Flask's `app.config`, Django's `settings`) as the text `from_env` reads.

A setting may hold what its variable would (text) or the natural Python value: a list for a
list, a number, a bool, bytes for a shared secret. Each becomes the variable's text, so one
parser (`_env.py`) checks every value and names the key in its error.
"""

from __future__ import annotations

from ._errors import ConfigurationError


def config_text(key: str, value: object) -> str:
    """A setting's value as the text its `BEARERGUARD_*` variable would hold."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):  # a shared secret given as bytes, not its repr
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigurationError(f"{key}: bytes that are not UTF-8") from None
    if isinstance(value, list | tuple | set | frozenset):  # audiences, algorithms, claims
        return ",".join(config_text(key, item) for item in value)
    if isinstance(value, bool | int | float):
        return str(value)
    raise ConfigurationError(
        f"{key}: expected text, a number or a list, not {type(value).__name__}"
    )
