"""xplus_release.serve: ``xplus-serve``, vLLM's OpenAI server behind a front app with a translation API and a demo.

Modules: ``cli`` (the command: starts vLLM on loopback, then the front app in uvicorn), ``app`` (assembles
the front app), ``gate`` (access log, API key, body limit for every route), ``proxy`` (streaming
pass-through to vLLM), ``translation`` (``/v1/translate``, ``/v1/languages``), ``lid`` (fastText language
ID), ``demo`` (Gradio), ``limits`` (request limits); with ``--api-keys``: ``keys`` (the keys file, reloaded
live), ``keys_cli`` (``xplus-serve keys``), ``ratelimit`` (per-key token buckets), ``metering`` (the
per-key limits layer and the token count), ``usage`` (SQLite usage store), ``usage_routes`` (``/v1/usage``,
``/metrics``).
"""
