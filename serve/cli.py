"""``xplus-serve``: vLLM's OpenAI-compatible server plus a translation API and a Gradio demo, on one port.

    xplus-serve --model xplus-tiny
    xplus-serve --model LLaMAX/Qwen3-XPlus-8B --host 0.0.0.0 --port 8000 --api-key "$KEY" -tp 2
    xplus-serve keys add alice --file keys.yaml && xplus-serve --model xplus-tiny --api-keys keys.yaml
    xplus-serve keys --help      # add | list | revoke keys with per-key limits

vLLM runs as a subprocess on a loopback port with a random internal key; this process listens on
--host/--port, checks the key (--api-key, or any key of --api-keys with its limits) on every route, serves
/v1/translate, /v1/languages, /v1/usage and the demo (/demo/), and passes every other route
(/v1/chat/completions, /v1/completions, /v1/models, /health, /metrics, …) through to vLLM.
SIGTERM or Ctrl-C: stop accepting, let in-flight requests finish, then stop vLLM.

When vLLM exits (a crash, an out-of-memory kill), xplus-serve notices at once, answers 503 with Retry-After
on the model routes and /health, and starts vLLM again (at most --max-restarts times within 10 minutes,
then it exits with status 1 so that systemd, Kubernetes or another supervisor takes over).
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import shlex
import signal
import socket
import sys
from pathlib import Path

from xplus_release.cli import add_model_arguments, run_cli
from xplus_release.config import add_flags, from_flags
from xplus_release.errors import ConfigError, MissingAssetError
from xplus_release.options import ModelOptions, ServerOptions
from xplus_release.serve.backend import Backend
from xplus_release.serve.endpoint import EndpointOptions
from xplus_release.serve.limits import ServeLimits
from xplus_release.serve.shared_state import StateOptions

log = logging.getLogger("xplus_release.serve")
CLIENT_FIELDS = ("endpoint", "api_key", "concurrency")  # ModelOptions of a client; xplus-serve is the server


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xplus-serve", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    # --api-key here is the key clients must send, not one for an --endpoint: its own flag below
    add_model_arguments(parser, exclude=CLIENT_FIELDS)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    parser.add_argument("--api-key", default=os.environ.get("XPLUS_API_KEY"),
                        help="one key required on every route as 'Authorization: Bearer KEY', without limits or "
                             "usage (default: $XPLUS_API_KEY; none and no --api-keys: open to anyone who can reach "
                             "the port)")
    parser.add_argument("--api-keys", type=Path, metavar="FILE", default=os.environ.get("XPLUS_API_KEYS_FILE"),
                        help="YAML file of keys with per-key limits and usage, made with 'xplus-serve keys add NAME "
                             "--file FILE'; changes apply without a restart; usage is kept beside it in "
                             "FILE-stem.usage.sqlite (default: $XPLUS_API_KEYS_FILE)")
    parser.add_argument("--demo", action=argparse.BooleanOptionalAction, default=True,
                        help="serve the Gradio demo at /demo/ (default: on)")
    parser.add_argument("--runs", type=Path, metavar="DIR",
                        help="serve the results explorer of xplus-eval view at /runs/ over the run folders in DIR "
                             "(behind --api-key; folders added later show after a restart)")
    parser.add_argument("--lid-model", metavar="PATH",
                        help="fastText language-ID model for source=auto (default: the NLLB model "
                             "facebook/fasttext-language-identification from the Hugging Face cache)")
    add_flags(parser.add_argument_group("request limits"), ServeLimits)
    add_flags(parser.add_argument_group("shared state (many replicas)"), StateOptions)
    add_flags(parser.add_argument_group("an existing vLLM server"), EndpointOptions)
    vllm = parser.add_argument_group("vLLM")
    vllm.add_argument("--vllm-args", default="", metavar="'ARGS'",
                      help="more arguments for vLLM's server, one quoted string, e.g. '--max-num-seqs 64 --gpu-memory-utilization 0.8'")
    vllm.add_argument("--vllm-log", metavar="PATH", help="vLLM's log file (default: a temporary file, printed at start)")
    add_flags(vllm, ServerOptions)
    return parser


# Set by xplus-serve itself: the internal key and port are how the front app reaches vLLM.
_RESERVED_VLLM_ARGS = ("--api-key", "--host", "--port", "--served-model-name", "--model")


def vllm_extra_args(text: str) -> list[str]:
    """Raises: ConfigError for an argument xplus-serve sets itself."""
    extra = shlex.split(text)
    for arg in extra:
        if arg.split("=", 1)[0] in _RESERVED_VLLM_ARGS:
            raise ConfigError(f"--vllm-args may not set {arg.split('=', 1)[0]}; use xplus-serve's own option")
    return extra


def load_detector(path: str | None):
    """The LID model, or (None, why) when the default one is missing: ``auto`` then answers 503 with the fix.

    Raises: MissingAssetError when an explicit --lid-model does not exist.
    """
    from xplus_release.serve.lid import LanguageDetector, default_lid_model_path

    if path:
        return LanguageDetector(path), None
    try:
        return LanguageDetector(default_lid_model_path()), None
    except MissingAssetError as err:
        log.warning("source=auto disabled: %s", err)
        return None, str(err)


def check_port_free(host: str, port: int) -> None:
    """Raises: ConfigError when the port is taken (before vLLM spends a minute starting)."""
    with socket.socket() as sock:
        # as uvicorn binds: connections of a previous run still in TIME_WAIT must not block a restart
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as err:
            raise ConfigError(f"cannot listen on {host}:{port} ({err.strerror}); pass another --port") from None


def _terminate(signum, _frame):
    raise SystemExit(0)  # unwinds through the finally that stops vLLM


@run_cli
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["keys"]:
        from xplus_release.serve import keys_cli

        return keys_cli.main(argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is the access log's job
    limits = from_flags(ServeLimits, args)  # ConfigError on a limit below 1
    model = from_flags(ModelOptions, args, exclude=CLIENT_FIELDS)
    server_opts = from_flags(ServerOptions, args)
    extra = vllm_extra_args(args.vllm_args)
    endpoint = from_flags(EndpointOptions, args)
    keys, metering = keys_from_args(args, from_flags(StateOptions, args))
    check_port_free(args.host, args.port)
    runs = runs_from_args(args)
    if endpoint.endpoint:
        return serve_endpoint(args, limits, endpoint, server_opts, runs, keys, metering)
    vllm_server = vllm_for(model, server_opts, args, extra)  # resolves (or downloads) the model: a missing one is one line, first
    detector, detector_error = load_detector(args.lid_model)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _terminate)  # until uvicorn installs its own: never orphan vLLM
    from xplus_release.engines.supervisor import SupervisedServer

    supervisor = SupervisedServer(vllm_server, max_restarts=server_opts.max_restarts)
    try:
        log.info("starting vLLM for %s on %s (log: %s)", vllm_server.model.name, vllm_server.root_url,
                 vllm_server.log_path)
        supervisor.start()
        backend = Backend(vllm_server.root_url, vllm_server.api_key, vllm_server.model.name)
        serve(args, limits, backend, supervisor, detector, detector_error, runs, keys, metering)
    finally:
        log.info("stopping vLLM")
        supervisor.stop()
    supervisor.raise_if_failed()  # exit 1: the restart budget is spent
    return 0


def serve_endpoint(args, limits: ServeLimits, endpoint: EndpointOptions, server_opts: ServerOptions,
                   runs: list[Path] | None, keys, metering) -> int:
    """Front an already-running vLLM server: no vLLM is started or restarted here.

    Raises: ConfigError when the endpoint does not answer within --startup-timeout or lists no model."""
    from xplus_release.serve.endpoint import EndpointWatch

    watch = EndpointWatch.of(endpoint)
    model = watch.served_model(server_opts.startup_timeout)
    detector, detector_error = load_detector(args.lid_model)
    log.info("fronting %s at %s (no vLLM started here)", model, watch.root_url)
    watch.start()
    try:
        serve(args, limits, Backend(watch.root_url, watch.api_key or "", model), watch, detector, detector_error,
              runs, keys, metering)
    finally:
        watch.stop()
    return 0


def vllm_for(options: ModelOptions, server_opts: ServerOptions, args: argparse.Namespace, extra: list[str]):
    """The vLLM server (not started): loopback only, with a random key that only this process knows."""
    from xplus_release.engines.server import VLLMServer
    from xplus_release.registry import resolve_model

    model = resolve_model(options.model, max_model_len=options.max_model_len)
    return VLLMServer(model, api_key=secrets.token_urlsafe(24),
                      tensor_parallel_size=options.tensor_parallel_size,
                      data_parallel_size=server_opts.data_parallel_size,
                      extra_args=extra, log_path=args.vllm_log, startup_timeout=server_opts.startup_timeout)


def keys_from_args(args: argparse.Namespace, state: StateOptions | None = None):
    """The key source for the gate and, with --api-keys, the limits and usage store (checked before vLLM starts).

    Raises: ConfigError for both --api-key and --api-keys, --state without --api-keys, a keys file that does not
    load, a bad --state URL, an unreachable Redis or a usage database that does not open.
    """
    from xplus_release.serve.keys import KeyRing, SingleKey
    from xplus_release.serve.metering import Metering
    from xplus_release.serve.shared_state import open_state

    state = state or StateOptions()

    if args.api_key and args.api_keys:
        raise ConfigError("both --api-key ($XPLUS_API_KEY) and --api-keys ($XPLUS_API_KEYS_FILE) are set; pass one: "
                          "add the single key to the file with 'xplus-serve keys add NAME'")
    if state.state and not args.api_keys:
        raise ConfigError("--state keeps the limits and usage of --api-keys FILE keys; pass --api-keys too")
    if not args.api_keys:
        return (SingleKey(args.api_key) if args.api_key else None), None
    ring = KeyRing(args.api_keys)
    if not any(entry.enabled for entry in ring.keys.keys):
        raise ConfigError(f"keys file {args.api_keys} has no enabled key; add one with: "
                          f"xplus-serve keys add NAME --file {args.api_keys}")
    limiter, usage = open_state(state, args.api_keys)
    return ring, Metering(usage, ring, limiter)


def runs_from_args(args: argparse.Namespace) -> list[Path] | None:
    """Raises: ConfigError when --runs holds no run folder (checked before vLLM starts)."""
    from xplus_release.serve.app import run_folders

    return run_folders(args.runs) if args.runs else None


def serve(args, limits: ServeLimits, backend: Backend, supervisor, detector, detector_error,
          runs: list[Path] | None = None, keys=None, metering=None) -> None:
    """Run the front app until SIGTERM/Ctrl-C, or until ``supervisor`` (of a managed vLLM) gives up."""
    import uvicorn

    from xplus_release.serve.app import DEMO_PATH, build_app

    app = build_app(backend, limits, keys, detector, detector_error, demo=args.demo, engine=supervisor,
                    runs=runs, metering=metering)
    if keys is None and args.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("listening on %s without --api-key or --api-keys: anyone who reaches the port can use it",
                    args.host)
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    log.info("serving %s at http://%s:%d/v1%s", backend.model, shown, args.port,
             f" and the demo at http://{shown}:{args.port}{DEMO_PATH}/" if args.demo else "")
    config = uvicorn.Config(app, host=args.host, port=args.port, access_log=False, log_level="warning",
                            timeout_graceful_shutdown=60, timeout_keep_alive=30)
    server = uvicorn.Server(config)
    supervisor.on_give_up = lambda _why: setattr(server, "should_exit", True)  # checked by uvicorn's main loop
    if getattr(supervisor, "state", None) == "failed":
        return  # it gave up while the app was being built
    server.run()


if __name__ == "__main__":
    sys.exit(main())
