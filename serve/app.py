"""The front app: translation routes and the demo of its own, every other route proxied to vLLM.

Why a front process rather than routes added inside vLLM's app: vLLM 0.32 builds its FastAPI app and
serves it in one coroutine (``build_and_serve`` in ``vllm.entrypoints.launchers.api_server.entry``, which
``openai/api_server.py`` re-exports) and takes extra behaviour only as ``--middleware`` import strings
with no arguments, so routes, the LID model, the Gradio mount and the limits could only be attached
through module-level state or a fork of that launcher, both tied to vLLM's private layout. A front process uses vLLM exactly as released (the same server ``xplus-eval``
starts), owns every route's auth, limits and access log, and costs one loopback hop with a keep-alive
pool (``benchmarks/serve_load.py`` measures it).
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Mount

from xplus_release.errors import ConfigError
from xplus_release.serve.availability import AlwaysReady, Engine, EngineGuard
from xplus_release.serve.backend import Backend, backend_client
from xplus_release.serve.errors import ApiError, error_body
from xplus_release.serve.file_route import FILE_PATH, MULTIPART_ROOM, file_router
from xplus_release.serve.gate import Gate, Keys
from xplus_release.serve.lid import LanguageDetector
from xplus_release.serve.limits import ServeLimits
from xplus_release.serve.metering import KeyMeter, Metering
from xplus_release.serve.proxy import VLLMProxy
from xplus_release.serve.translation import Translator, translation_router
from xplus_release.serve.usage_routes import usage_router
from xplus_release.serve.validation import TextGuard

DEMO_PATH = "/demo"
RUNS_PATH = "/runs"
log = logging.getLogger("xplus_release.serve")


def build_app(backend: Backend, limits: ServeLimits, keys: Keys | None, detector: LanguageDetector | None,
              detector_error: str | None = None, demo: bool = True, engine: Engine | None = None,
              runs: list[Path] | None = None, metering: Metering | None = None) -> Gate:
    """The whole server as one ASGI app (wrap it in uvicorn); ``runs``: run folders shown at /runs/;
    ``keys``: None serves anyone; ``metering``: per-key limits and usage (with an ``--api-keys`` file).

    Layers, outermost first: ``Gate`` (access log, key, body size), ``TextGuard`` (bodies are UTF-8 JSON of
    encodable text), ``EngineGuard`` (503 while ``engine`` restarts), ``KeyMeter`` (per-key limits and
    usage), then the routes. A new cross-cutting check is one more pure-ASGI layer here.
    """
    engine = engine or AlwaysReady()
    client = backend_client(backend)
    translator = Translator(backend, limits, detector, detector_error, engine)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        if metering is not None:
            metering.usage.start()
        yield
        await client.aclose()
        await translator.aclose()
        if metering is not None:
            metering.usage.close()  # the last second's usage

    app = FastAPI(title="xplus-serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _internal_error)
    app.include_router(translation_router(translator))
    app.include_router(file_router(translator))
    app.include_router(usage_router(metering, client, backend))
    if demo:
        _mount_demo(app, translator, metering)
    if runs:
        mount_runs(app, runs)
    # Last, so it only sees what no route above claimed.
    app.router.routes.append(Mount("", app=VLLMProxy(backend, client, engine)))
    demo_path = DEMO_PATH if demo else None
    inner = app
    if metering is not None:  # inside the engine guard: a 503 while vLLM restarts spends none of a key's limits
        inner = KeyMeter(app, metering, unmetered=(DEMO_PATH, RUNS_PATH))  # the demo meters its own translations
    file_body = (max(limits.max_body_bytes, limits.max_file_bytes + MULTIPART_ROOM), "--max-file-bytes")
    uploads = {FILE_PATH: file_body, f"{DEMO_PATH}/gradio_api/upload": file_body}  # the demo's document tab
    return Gate(TextGuard(EngineGuard(inner, engine, demo_path)), keys, limits.max_body_bytes, demo_path, uploads)


def _mount_demo(app: FastAPI, translator: Translator, metering: Metering | None) -> None:
    import gradio as gr

    from xplus_release.serve.demo import DemoBackend, build_demo

    blocks = build_demo(DemoBackend(translator, metering), translator.backend.model)
    gr.mount_gradio_app(app, blocks, path=DEMO_PATH, footer_links=["api"])

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse(f"{DEMO_PATH}/")


def run_folders(runs_dir: Path) -> list[Path]:
    """The run folders (with a run.json) directly under ``runs_dir``.

    Raises:
        ConfigError: ``runs_dir`` is not a folder or holds no run folder.
    """
    folders = sorted(p for p in runs_dir.iterdir() if (p / "run.json").is_file()) if runs_dir.is_dir() else []
    if not folders:
        raise ConfigError(f"--runs {runs_dir} holds no run folder (a folder with run.json); "
                          "pass the folder your xplus-eval --output folders are in")
    return folders


def mount_runs(app: FastAPI, folders: list[Path]) -> None:
    """The results explorer of ``xplus-eval view`` at /runs/, behind the same key as every route. It is
    found through the ``xplus_release.web_apps`` entry point, so this package does not import evalsuite."""
    from importlib.metadata import entry_points

    import gradio as gr

    entries = entry_points(group="xplus_release.web_apps", name="runs")
    if not entries:
        raise ConfigError("the results explorer is not registered in this installation; reinstall the package "
                          "(pip install -e . or bash scripts/install.sh)")
    gr.mount_gradio_app(app, next(iter(entries)).load()(folders), path=RUNS_PATH, footer_links=["api"])


def _error(status: int, message: str, headers: dict | None = None) -> Response:
    return Response(error_body(message), status_code=status, media_type="application/json", headers=headers)


async def _api_error(_request: Request, err: ApiError) -> Response:
    return _error(err.status, err.message, err.headers)


async def _validation_error(_request: Request, err: RequestValidationError) -> Response:
    problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in err.errors())
    return _error(422, f"invalid request: {problems}")


async def _http_error(_request: Request, err: StarletteHTTPException) -> Response:
    return _error(err.status_code, str(err.detail), err.headers)


async def _internal_error(_request: Request, err: Exception) -> Response:
    log.exception("unhandled error", exc_info=err)
    return _error(500, f"internal error ({type(err).__name__}); the server log has the details")
