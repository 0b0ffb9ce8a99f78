"""Error answers: a friendly page (or a JSON object under /api/) for every HTTP error, never a stack trace; an
unexpected exception is logged and answered 500. A database that cannot be written or read (read-only, disk full,
unopenable or unreachable, busy past the time-out, damaged: app.db.StorageUnavailableError) is answered 503 with a
Retry-After header: the process keeps serving, and the transactions of app/recommendations.py have rolled back, so
nothing was half-saved. A body that gunicorn finds malformed only when the app reads it (a bad chunk size or
extension, a broken trailer, an end before the body's) is answered 400."""

from __future__ import annotations

from flask import Flask, Request, Response, current_app, render_template, request
from gunicorn.http.errors import NoMoreData, ParseException
from werkzeug.exceptions import BadRequest, HTTPException, InternalServerError, RequestEntityTooLarge, SecurityError
from werkzeug.formparser import FormDataParser
from werkzeug.http import HTTP_STATUS_CODES

from app import MEGABYTE
from app.db import LOST_TABLES, StorageUnavailableError

RETRY_AFTER_SECONDS = 30


class RequestError(Exception):
    """A request refused for a reason the client can act on; `status` is the HTTP status that says why."""

    def __init__(self, message: str, status: int, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after  # seconds, sent as Retry-After when set

    @property
    def headers(self) -> dict[str, str]:
        """The headers its answer carries, page or JSON: Retry-After when it says when to try again."""
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}


def as_sentence(message: str) -> str:
    """An error's message, which the API gives as it is, begun with a capital for a page, unless it begins with a
    name that is not a word (a file name such as empty.jpg, an id): that is shown as it was given."""
    first = message.split(maxsplit=1)[0] if message.strip() else ""
    return message[:1].upper() + message[1:] if first.isalpha() else message


def full_sentence(message: str) -> str:
    """An error's message as a page shows it: begun with a capital and ended with a full stop (unless it ends with
    one already, or with ! or ?), so that another sentence may follow it."""
    sentence = as_sentence(message.strip())
    return sentence if sentence.endswith((".", "!", "?")) else sentence + "."


JSON_PATHS = ("/api/", "/healthz")  # answered in JSON whatever the client accepts, errors included


def wants_json() -> bool:
    return request.path.startswith(JSON_PATHS) or request.accept_mimetypes.best == "application/json"


def error_answer(status: int, title: str, message: str) -> tuple[object, int]:
    if wants_json():
        return {"error": message, "status": status}, status
    return render_template("error.html", status=status, title=title, message=full_sentence(message)), status


def http_error(error: HTTPException) -> tuple[object, int, list[tuple[str, str]]]:
    """Our page or JSON for an HTTP error, with the headers the error's own answer carries (Allow on a 405,
    WWW-Authenticate on a 401) but its content type."""
    headers = [(name, value) for name, value in error.get_headers() if name.lower() != "content-type"]
    if isinstance(error, SecurityError) and not wants_json():  # a Host not in TRUSTED_HOSTS: no link can be built
        return Response(f"{error.description}\n", mimetype="text/plain"), error.code or 400, headers
    if isinstance(error, RequestEntityTooLarge):
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        if request.content_length is not None and request.content_length <= limit:  # the form's limits, not the size
            parts, memory = current_app.config["MAX_FORM_PARTS"], current_app.config["MAX_FORM_MEMORY_SIZE"]
            message = (
                f"That form has too many fields or too long a field: at most {parts:,} fields, each text field "
                f"under {memory / 1000:g} KB."
            )
            return (*error_answer(413, "Form too large", message), headers)
        if request.mimetype != "multipart/form-data":  # a vote's JSON, or a body where none is read
            reads_none = ", and this address reads none" if request.method in ("GET", "HEAD") else ""
            message = f"That request's body is too large: {limit / MEGABYTE:g} MB at most{reads_none}."
            return (*error_answer(413, "Request too large", message), headers)
        sent = "" if request.content_length is None else f" (this one is {request.content_length / MEGABYTE:.1f} MB)"
        message = f"That is too large: posters up to {limit / MEGABYTE:g} MB in all, please{sent}."
        return (*error_answer(413, "File too large", message), headers)
    return (*error_answer(error.code or 500, error.name, error.description or error.name), headers)


def request_error(error: RequestError) -> tuple[object, int, dict[str, str]]:
    """A RequestError that no view answered itself (the API's are all answered here)."""
    return (*error_answer(error.status, HTTP_STATUS_CODES.get(error.status, "Error"), str(error)), error.headers)


def unexpected_error(error: Exception) -> tuple[object, ...]:
    if isinstance(error, HTTPException):
        return http_error(error)
    current_app.logger.exception("unexpected error on %s %s", request.method, request.path)
    return error_answer(
        500, InternalServerError().name, "Something went wrong on our side. It has been logged; please try again."
    )


def database_error(error: StorageUnavailableError) -> tuple[object, int, dict[str, str]]:
    traceback = error if error.reason == LOST_TABLES else None  # or a table name mistyped: say where
    current_app.logger.error(
        "database unavailable on %s %s: %s", request.method, request.path, error, exc_info=traceback
    )
    doing = "read its database" if request.method in ("GET", "HEAD") else "save"
    body, status = error_answer(
        503,
        "Database unavailable",
        f"PosterBench cannot {doing} right now: {error.reason}. Nothing was saved; please try again later.",
    )
    return body, status, {"Retry-After": str(RETRY_AFTER_SECONDS)}


def malformed_body(error: ParseException | NoMoreData) -> tuple[object, int]:
    """gunicorn parses a chunked body as the app reads it, so its framing errors surface in the view."""
    current_app.logger.warning("malformed request body on %s %s: %r", request.method, request.path, error)
    message = f"The request's body is malformed ({type(error).__name__}: {error}). Nothing was saved."
    return error_answer(400, "Bad Request", message)


class StrictFormRequest(Request):
    """A request whose form body (multipart or URL-encoded) Werkzeug cannot parse is refused with 400 naming why:
    Werkzeug's parser reads it, silently, as an empty form, and the views then said "this request sent 0" of a
    request that sent a file (a part whose name is not UTF-8, a body without its closing boundary)."""

    def make_form_data_parser(self) -> FormDataParser:
        parser = super().make_form_data_parser()
        parser.silent = False
        return parser

    def _load_form_data(self) -> None:
        try:
            super()._load_form_data()
        except ValueError as error:
            current_app.logger.info("unreadable %s body on %s %s: %s", self.mimetype, self.method, self.path, error)
            if self.mimetype == "multipart/form-data":
                why = "its field or file names are not UTF-8, or its body is cut short or lacks its closing boundary"
            else:
                why = "it is not URL-encoded UTF-8 text"
            raise BadRequest(f"The request's form could not be read: {why}. Nothing was read from it.") from error


def init_app(app: Flask) -> None:
    app.request_class = StrictFormRequest
    app.jinja_env.filters["sentence"] = full_sentence  # a stored message (a failed job's) as a page shows it
    app.register_error_handler(ParseException, malformed_body)
    app.register_error_handler(NoMoreData, malformed_body)  # a body that ended before its length or last chunk
    app.register_error_handler(StorageUnavailableError, database_error)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(RequestError, request_error)
    app.register_error_handler(Exception, unexpected_error)
