"""One error family for the whole product.

Pages catch :class:`StudioError` (and only it) and show its message with ``st.error``;
the CLI prints it and exits with status 2. Messages are written for end users and name
the bad value and the allowed range.
"""

from __future__ import annotations


class StudioError(Exception):
    """Base class of every error the product raises on purpose."""


class InputError(StudioError, ValueError):
    """A user-supplied value (parameter, file, text) is invalid."""


class AudioDecodeError(InputError):
    """Bytes could not be decoded as audio (corrupt, truncated, not audio)."""


class LimitError(InputError):
    """An input exceeds a configured limit (size, duration, channels, rate, memory)."""


class AuthError(StudioError):
    """Authentication failed (wrong credentials, throttled, bad cookie)."""


class NotFoundError(StudioError, LookupError):
    """A requested object does not exist or is not visible to the caller."""


class ForbiddenError(StudioError, PermissionError):
    """The caller may not perform this action on this object."""


class ModelError(StudioError):
    """A model checkpoint is missing, corrupt or incompatible."""


class CancelledError(StudioError):
    """A long job was cancelled by the user."""
