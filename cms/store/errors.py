"""What the store raises: the repository failed, a ref moved under a compare-and-swap, an object
is missing."""

from __future__ import annotations

from cms.errors import RepositoryFailure, Unavailable


class StoreError(RepositoryFailure):
    """The repository could not be read or written."""


class RefMoved(StoreError):
    """update_ref_if_equals found the ref elsewhere than expected."""


class ObjectMissing(StoreError):
    """An object the caller named is not in the repository."""


class RefLocked(StoreError, Unavailable):
    """Another git process (by hand, or `git gc`) holds the ref's lock file: 503, retry."""
