"""vLLM's OpenAI-compatible server alone, for a model of the registry: ``python -m xplus_release.engines.vllm_cli
--model NAME [vLLM's options]``. It is the ``vllm`` service of compose.replicas.yaml where that service runs
the xplus-serve image (a CPU machine, no registry to pull the official vLLM image from):

    VLLM_IMAGE=xplus-serve:cpu VLLM_ENTRYPOINT="tini -- python3 -m xplus_release.engines.vllm_cli" \
      XPLUS_MODEL=xplus-tiny XPLUS_SERVED_NAME=xplus-tiny podman-compose -f compose.replicas.yaml up -d

It takes the official image's arguments (``--model NAME --served-model-name NAME ...``). NAME goes through
the model registry as ``xplus-serve --model`` does: ``xplus-tiny`` is built into the cache on first use and
a registered model gets its dtype, context length and thinking-off default. Then it becomes
``python -m vllm.entrypoints.openai.api_server`` (the CPU build's ``vllm`` script does not start) on
0.0.0.0, port ``$VLLM_PORT`` (8000); vLLM reads its key from ``$VLLM_API_KEY`` itself.
"""

from __future__ import annotations

import argparse
import os
import sys

from xplus_release.engines.server import VLLMServer
from xplus_release.errors import XPlusError
from xplus_release.registry import resolve_model


def vllm_command(argv: list[str]) -> list[str]:
    parser = argparse.ArgumentParser(prog="python -m xplus_release.engines.vllm_cli", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="registered name, model folder or hub id")
    parser.add_argument("--served-model-name", help="the id clients ask for (default: the registered name)")
    args, vllm_args = parser.parse_known_args(argv)
    server = VLLMServer(resolve_model(args.model), port=int(os.environ.get("VLLM_PORT", "8000")),
                        extra_args=vllm_args, log_path=os.devnull)
    command = server.command()
    # all interfaces: the fronts reach this container over the compose network
    command[command.index("--host") + 1] = "0.0.0.0"
    if args.served_model_name:
        command[command.index("--served-model-name") + 1] = args.served_model_name
    return command


def main() -> int:
    try:
        command = vllm_command(sys.argv[1:])
    except XPlusError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    print("starting: " + " ".join(command), file=sys.stderr, flush=True)
    os.execv(command[0], command)


if __name__ == "__main__":
    sys.exit(main())
