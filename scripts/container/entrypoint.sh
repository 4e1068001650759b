#!/bin/sh
# The image's entrypoint: xplus-serve on every interface of the container, port $XPLUS_PORT (the health
# check asks the same port). The key comes from the environment: XPLUS_API_KEY, or a mounted keys file
# named by XPLUS_API_KEYS_FILE. Arguments are xplus-serve's (--model ..., -tp 2, --vllm-args '...').
exec xplus-serve --host 0.0.0.0 --port "${XPLUS_PORT:-8000}" "$@"
