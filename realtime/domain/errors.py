"""The errors a caller of the service handles: each maps onto an HTTP status and a wire code."""

from __future__ import annotations


class DomainError(Exception):
    """A request that cannot be honoured; `code` and `status` map it onto the wire."""

    code = "invalid"
    status = 400

    def __init__(self, message: str, fields: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields


class Invalid(DomainError):
    code = "invalid"
    status = 400


class NotFound(DomainError):
    code = "not_found"
    status = 404


class Conflict(DomainError):
    code = "conflict"
    status = 409
