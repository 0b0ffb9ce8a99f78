"""Error answers: a friendly page (or a JSON object under /api/) for every HTTP error, never a stack trace; an
unexpected exception is logged and answered 500."""

from __future__ import annotations

from flask import Flask, current_app, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError, RequestEntityTooLarge

MEGABYTE = 1024 * 1024


class RequestError(Exception):
    """A request refused for a reason the client can act on; `status` is the HTTP status that says why."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def error_answer(status: int, title: str, message: str) -> tuple[object, int]:
    if wants_json():
        return {"error": message, "status": status}, status
    return render_template("error.html", status=status, title=title, message=message), status


def http_error(error: HTTPException) -> tuple[object, int]:
    if isinstance(error, RequestEntityTooLarge):
        limit = current_app.config["MAX_CONTENT_LENGTH"] / MEGABYTE
        return error_answer(413, "File too large", f"That file is too large: posters up to {limit:g} MB, please.")
    return error_answer(error.code or 500, error.name, error.description or error.name)


def unexpected_error(error: Exception) -> tuple[object, int]:
    if isinstance(error, HTTPException):
        return http_error(error)
    current_app.logger.exception("unexpected error on %s %s", request.method, request.path)
    return error_answer(
        500, InternalServerError.name, "Something went wrong on our side. It has been logged; please try again."
    )


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected_error)
