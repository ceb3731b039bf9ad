"""Error responses: every one a JSON object {"error": "one sentence"}; bad input is a 4xx naming the field, never a
500. FastAPI's validation errors (malformed JSON, a wrong type, a missing field) are rewritten into that shape. An
unexpected error is logged with its traceback under an id, and the client gets only the id: no traceback, path or
library version leaves the server."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from nlp_transfer.serve.models import InputError

log = logging.getLogger("nlp_transfer.serve")
REQUEST_SHAPE = 'send {"inputs": [...]}'


class APIError(Exception):
    """A response to send: status, one sentence, and headers (Retry-After, WWW-Authenticate)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def validation_message(errors: list[Any]) -> tuple[int, str]:
    """(status, sentence) for FastAPI's first validation error: 400 for a body that is not JSON, else 422."""
    first = errors[0] if errors else {}
    kind, location = first.get("type", ""), [part for part in first.get("loc", ()) if part != "body"]
    if kind == "json_invalid":
        return 400, f"the request body is not valid JSON ({first.get('ctx', {}).get('error', 'parse error')}); " + (
            REQUEST_SHAPE
        )
    if not location or kind in {"model_attributes_type", "dict_type"}:
        return 422, f"the request body must be a JSON object; {REQUEST_SHAPE}"
    if location[0] == "inputs" and len(location) >= 2:
        return 422, f'inputs[{location[1]}] must be a string or an object of fields, e.g. {{"text": "..."}}'
    field = ".".join(str(part) for part in location)
    if kind == "missing":
        return 422, f"the body has no field '{field}'; {REQUEST_SHAPE}"
    if kind == "extra_forbidden":
        return 422, f"the body has an unknown field '{field}'; {REQUEST_SHAPE}"
    if kind == "too_short":
        return 422, f"{field} is empty; give at least one input"
    return 422, f"{field}: {first.get('msg', 'invalid')}"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        status, message = validation_message(list(err.errors()))
        if not _sent_as_json(request) and message.startswith("the request body must be"):
            message = "the request body must be JSON (Content-Type: application/json); " + REQUEST_SHAPE
        return error_response(status, message)

    @app.exception_handler(APIError)
    async def refused(request: Request, err: APIError) -> JSONResponse:
        return error_response(err.status, err.message, err.headers)

    @app.exception_handler(InputError)
    async def bad_input(request: Request, err: InputError) -> JSONResponse:
        return error_response(err.status, str(err))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException) -> JSONResponse:
        messages = {
            404: f"no such endpoint: {request.url.path}",
            405: f"{request.method} is not allowed here",
            413: body_too_large(request.app.state.limits.max_body_bytes),
        }
        return error_response(err.status_code, messages.get(err.status_code, str(err.detail)), err.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, err: Exception) -> JSONResponse:
        return error_response(500, internal_error(err))


def body_too_large(limit: int) -> str:
    return f"the request body is over {limit} bytes (--max-body-bytes); send fewer or shorter inputs"


def _sent_as_json(request: Request) -> bool:
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    return kind == "application/json" or kind.endswith("+json")


def internal_error(err: BaseException) -> str:
    """Log the error with its traceback under a fresh id; the sentence the client gets names only the id."""
    incident = uuid.uuid4().hex[:12]
    log.error("internal error %s", incident, exc_info=err)
    return f"internal server error (id {incident}); the server's log has the details"
