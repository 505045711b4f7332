"""Errors the engine raises; the HTTP layer renders every one as the same envelope."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: where (``field``; ``index`` for a batch) and what."""

    field: str
    message: str
    index: int | None = None


@dataclass
class ApiError(Exception):
    status: int
    error_code: str
    message: str
    problems: list[Problem] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.status} {self.error_code}: {self.message}"


def bad_request(problems: list[Problem], message: str = "invalid query parameters") -> ApiError:
    return ApiError(400, "invalid_parameters", message, problems)


def not_found(what: str = "resource") -> ApiError:
    """The one answer for ids that are foreign or do not exist: they must look alike."""
    return ApiError(404, "not_found", f"{what} not found")
