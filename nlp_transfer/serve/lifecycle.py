"""A server's life: check everything given (names, keys, model folders, the address) before loading a model, load
and warm every model, say so in one line, serve until SIGTERM or Ctrl-C, then stop taking connections, finish what
is in flight (up to the grace period) and return, so the command exits 0.

uvicorn does the HTTP and the graceful shutdown. After it stops it raises the signal it caught again, for the
handler that was there before it started; the handlers installed here take that second delivery quietly.
"""

from __future__ import annotations

import logging
import math
import queue
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from logging.handlers import QueueHandler, QueueListener
from pathlib import Path
from typing import Any

from nlp_transfer.core import distributed
from nlp_transfer.core.errors import UserError
from nlp_transfer.core.hardware import Runtime
from nlp_transfer.core.quiet import quiet_libraries
from nlp_transfer.serve.app import Served, create_app
from nlp_transfer.serve.batching import BatchSettings
from nlp_transfer.serve.keys import KEYS_ENV, read_keys
from nlp_transfer.serve.limits import Limits
from nlp_transfer.serve.metrics import Metrics
from nlp_transfer.serve.models import ServedModel, load_model, model_names, open_models

OPEN_HOSTS = {"0.0.0.0", "::", ""}


@dataclass
class ServeOptions:
    models: list[str]
    names: list[str] = field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 8000
    device: str = "auto"
    precision: str = "auto"
    limits: Limits = field(default_factory=Limits)
    batching: BatchSettings = field(default_factory=BatchSettings)
    api_keys_file: Path | None = None
    cors_origins: list[str] = field(default_factory=list)
    grace: float = 30.0  # seconds in-flight requests get to finish after SIGTERM


def serve(options: ServeOptions, say: Callable[[str], None]) -> None:
    """Run the server until it is told to stop (a UserError for anything wrong before it starts)."""
    if distributed.launched():
        raise UserError(
            "serve runs as one process: start it without accelerate launch / torchrun (it batches requests itself; "
            "run one server per GPU behind a load balancer to use several)"
        )
    references = model_names(options.models, options.names)
    keys = read_keys(options.api_keys_file)
    runtime = Runtime.choose(options.device, options.precision)
    opened = open_models(references)
    listener = bind(options.host, options.port)
    try:
        if options.host in OPEN_HOSTS:
            say(
                f"warning: listening on every network interface ({options.host}): anyone who can reach this machine "
                "can call it" + ("" if keys else f"; set API keys with --api-keys-file or ${KEYS_ENV}")
            )
        with quiet_libraries():
            models = {
                name: load_model(name, trained, runtime, options.batching.max_batch)
                for name, trained in zip(references, opened, strict=True)
            }
        served = Served(models, options.limits, options.batching, keys, options.cors_origins)
        with _log_to_stderr():
            say(startup_line(models, listener, keys, options))
            _run(served, listener, options.grace)
    finally:
        listener.close()
    say("stopped")


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound now: an address in use is refused before any model loads."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as err:
        raise UserError(f"--host {host}: not an address of this machine ({err.strerror}); e.g. 127.0.0.1") from err
    listener = socket.socket(family, kind, proto)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(address)
    except OSError as err:
        listener.close()
        raise UserError(
            f"--host {host} --port {port}: cannot listen there ({err.strerror}); choose another --port"
        ) from err
    listener.listen(2048)  # connections wait in the backlog from now on: none is refused once the line is printed
    return listener


def startup_line(
    models: dict[str, ServedModel], listener: socket.socket, keys: list[bytes], options: ServeOptions
) -> str:
    host, port = listener.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    described = "; ".join(
        f"{name} ({info['task']}, {info['base_model']}, {info['device']} {info['precision']})"
        for name, info in ((name, model.describe()) for name, model in models.items())
    )
    batching = options.batching
    return (
        f"serving {described} at http://{shown}:{port} (max batch {batching.max_batch} texts, wait "
        f"{batching.max_wait * 1000:g} ms, queue {batching.max_queue}; API keys: {len(keys) or 'none'}; "
        "SIGTERM or Ctrl-C stops it)"
    )


def _run(served: Served, listener: socket.socket, grace: float) -> None:
    import uvicorn

    app = create_app(served, Metrics())
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=math.ceil(grace),
        lifespan="on",
        server_header=False,
    )
    server = uvicorn.Server(config)
    before = {sig: signal.signal(sig, _after_shutdown) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run(sockets=[listener])
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def _after_shutdown(sig: int, frame: Any) -> None:
    """uvicorn raises the signal it handled once more after its graceful shutdown: the server has stopped."""


@contextmanager
def _log_to_stderr() -> Iterator[None]:
    """Access lines and errors (with an id) on stderr, one line each (a traceback under an internal error). The
    event loop only queues a line; a thread of logging's own writes it (a write per request on the loop cost about
    a sixth of its time at full load), and every queued line is written before this returns."""
    lines: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%dT%H:%M:%S"))
    writer = QueueListener(lines, handler)
    loggers = {"nlp_transfer.serve": logging.INFO, "uvicorn.error": logging.WARNING}
    for name, level in loggers.items():
        logger = logging.getLogger(name)
        logger.handlers = [QueueHandler(lines)]
        logger.setLevel(level)
        logger.propagate = False
    writer.start()
    try:
        yield
    finally:
        writer.stop()
        for name in loggers:  # what is logged after this (by a test's next server, say) is not left in a queue
            logging.getLogger(name).handlers = [handler]
