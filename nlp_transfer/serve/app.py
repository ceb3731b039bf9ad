"""The HTTP API (FastAPI): predict with a model, list the models, health, readiness, metrics, and the OpenAPI
document FastAPI writes from the request and response models below."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from nlp_transfer.core.errors import UserError
from nlp_transfer.serve.batching import RETRY_AFTER_SECONDS, Batcher, BatchSettings, QueueFull
from nlp_transfer.serve.errors import APIError, body_too_large, error_response, install_error_handlers, internal_error
from nlp_transfer.serve.keys import key_accepted
from nlp_transfer.serve.limits import Limits, check_inputs
from nlp_transfer.serve.metrics import Metrics
from nlp_transfer.serve.models import InputError, ServedModel

log = logging.getLogger("nlp_transfer.serve")
access = logging.getLogger("nlp_transfer.serve.access")


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inputs: list[str | dict[str, Any]] = Field(
        min_length=1,
        description='Inputs with the shape of `predict --file` rows: {"text": ...} (and "text_pair" for pair '
        'models; a text model also takes a plain string), or {"question": ..., "context": ...} for QA. The fields '
        "may also be named as the columns the model was trained on; other fields are kept as predict keeps them.",
        examples=[["a gripping, beautifully acted film", {"text": "the plot never ends"}]],
    )


class PredictResponse(BaseModel):
    model: str = Field(description="the model's name")
    outputs: list[dict[str, Any]] = Field(
        description="one row per input, in order: exactly the JSON line `nlp-transfer predict` prints for it "
        "(classification: label, probability, probabilities; multi_label: labels, probabilities; regression: "
        "value(s); QA: answer, score, start, end)"
    )


class ModelInfo(BaseModel):
    name: str
    task: str
    labels: list[str]
    base_model: str
    device: str
    precision: str
    max_length: int | None
    inputs: dict[str, list[str]] = Field(description="each input field and the names it may be sent under")


class ModelList(BaseModel):
    models: list[ModelInfo]


class Status(BaseModel):
    status: str


class ErrorBody(BaseModel):
    error: str = Field(description="one sentence: what was wrong, naming the field, and what to send")


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": why}
    for code, why in {
        400: "the body is not JSON",
        401: "no valid API key",
        404: "no such model",
        413: "over a size limit",
        422: "a field is missing, has the wrong type, or does not fit the model",
        503: "the queue is full (see Retry-After)",
        504: "not answered within the request timeout",
    }.items()
}


@dataclass
class Served:
    models: dict[str, ServedModel]
    limits: Limits
    batching: BatchSettings
    keys: list[bytes]
    cors_origins: list[str]


bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer KEY (when the server has API keys)")
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="or X-API-Key: KEY")


def create_app(served: Served, metrics: Metrics) -> FastAPI:
    app = FastAPI(
        title="nlp-transfer serve",
        description="Predictions from models trained with nlp-transfer: the same rows `nlp-transfer predict` prints.",
        version="1",
        strict_content_type=False,  # a body is read as JSON whatever its Content-Type says (curl -d sends a form's)
        lifespan=_lifespan(served, metrics),
    )
    app.state.limits = served.limits
    app.state.ready = False
    install_error_handlers(app)

    async def require_key(  # async: a plain def would cost every request a hop to a thread pool and back
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        key: Annotated[str | None, Depends(api_key_header)],
    ) -> None:
        if not served.keys:
            return
        given = credentials.credentials if credentials is not None else key
        if not key_accepted(given.encode("utf-8") if given else None, served.keys):
            raise APIError(
                401, "a valid API key is required (Authorization: Bearer KEY)", {"WWW-Authenticate": "Bearer"}
            )

    keyed = [Depends(require_key)]

    @app.post("/v1/models/{name}/predict", response_model=PredictResponse, responses=ERRORS, dependencies=keyed)
    async def predict(name: str, body: PredictRequest) -> PredictResponse:
        """Predictions for the inputs, in order, batched with other callers' requests."""
        model = _model(served, name)
        items = model.items(body.inputs)
        check_inputs(model, items, served.limits)
        if len(items) > served.batching.max_queue:  # it would never fit: not a reason to retry
            raise InputError(f"inputs has {len(items)} entries; the queue holds {served.batching.max_queue}", 413)
        batcher: Batcher = app.state.batchers[name]
        try:
            rows = await asyncio.wait_for(batcher.submit(items), served.limits.timeout)
        except QueueFull:
            raise APIError(
                503, f"model '{name}' has a full queue; retry shortly", {"Retry-After": str(RETRY_AFTER_SECONDS)}
            ) from None
        except TimeoutError:
            raise APIError(504, f"not answered within {served.limits.timeout:g} s (--timeout)") from None
        except UserError as err:
            raise InputError(str(err).removeprefix("predict: ")) from err
        except Exception as err:
            raise APIError(500, internal_error(err)) from None
        return PredictResponse(
            model=name, outputs=[model.answer(given, row) for given, row in zip(body.inputs, rows, strict=True)]
        )

    @app.get("/v1/models", response_model=ModelList, responses={401: ERRORS[401]}, dependencies=keyed)
    async def models() -> ModelList:
        """Every served model: its task, labels, base model, device and precision, and the input fields it reads."""
        return ModelList(models=[ModelInfo(**model.describe()) for model in served.models.values()])

    @app.get("/health", response_model=Status)
    async def health() -> Status:
        """The server is alive (it answers)."""
        return Status(status="alive")

    @app.get("/ready", response_model=Status, responses={503: {"model": Status}})
    async def ready(response: Response) -> Status:
        """Every model is loaded and warmed up, and the server takes requests (503 while starting or stopping)."""
        if not app.state.ready:
            response.status_code = 503
            return Status(status="not ready")
        return Status(status="ready")

    @app.get("/metrics", response_class=Response, dependencies=keyed)
    async def prometheus() -> Response:
        """Prometheus text: requests by route and status, latency, batch sizes, queue depth, texts predicted."""
        return Response(metrics.text(), media_type=metrics.content_type)

    if served.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=served.cors_origins, allow_methods=["GET", "POST"])
    app.add_middleware(BodyLimit, max_bytes=served.limits.max_body_bytes)
    app.add_middleware(AccessLog, metrics=metrics)
    return app


def _model(served: Served, name: str) -> ServedModel:
    if name not in served.models:
        raise APIError(404, f"no model named '{name}'; GET /v1/models lists them ({', '.join(served.models)})")
    return served.models[name]


def _lifespan(served: Served, metrics: Metrics) -> Any:
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        app.state.batchers = {
            name: Batcher(
                name,
                model.predictor.predict_batch,
                model.predictor.items.length,
                served.batching,
                metrics.batch,
                metrics.depth,
            )
            for name, model in served.models.items()
        }
        for batcher in app.state.batchers.values():
            batcher.start()
        app.state.ready = True
        yield
        app.state.ready = False
        for batcher in app.state.batchers.values():
            await batcher.stop()

    return lifespan


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]


class AccessLog:
    """ASGI middleware: one log line per request (method, path, status, latency) and the request metrics. Headers
    (and so API keys) are never logged."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "other")
            self.metrics.request(route, status, seconds)
            access.info("%s %s %d %.1f ms", scope["method"], scope["path"], status, seconds * 1000)


class BodyLimit:
    """ASGI middleware: a body over the limit gets the JSON 413, at once when its Content-Length says so, else as it
    streams past the limit (an HTTPException raised where the route reads the body, answered by the handlers).
    FastAPI's own max_body_size answers a declared length in plain text, so it is not used."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await error_response(413, body_too_large(self.max_bytes))(scope, receive, send)
            return
        seen = 0

        async def counted() -> Any:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise HTTPException(413)
            return message

        await self.app(scope, counted, send)
