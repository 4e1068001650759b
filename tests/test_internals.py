"""The wrappers of library internals (``xplus_release.internals``), each run against the installed library:
when a version change breaks one, the failing test here names it."""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import openai
import pytest
from datatrove.executor.slurm import SlurmPipelineExecutor

from xplus_release.internals import (
    fasttext_predict,
    load_lm_eval_yaml,
    openai_http_package,
    recorded_slurm_submissions,
)
from xplus_release.languages import find_language
from xplus_release.lid import load_lid_model

LID176 = Path(__file__).parent / "data" / "lid" / "lid.176.ftz"


def test_lm_eval_yaml_merges_includes_and_imports_functions_from_the_yaml_folder(tmp_path):
    (tmp_path / "task_utils.py").write_text("def process_docs(dataset):\n    return dataset\n")
    (tmp_path / "_base.yaml").write_text("dataset_path: some/dataset\noutput_type: generate_until\n")
    (tmp_path / "task.yaml").write_text("include: _base.yaml\ntask: t\nprocess_docs: !function task_utils.process_docs\n")
    resolved = load_lm_eval_yaml(tmp_path / "task.yaml", resolve_functions=True)
    assert resolved["dataset_path"] == "some/dataset" and resolved["task"] == "t"
    assert callable(resolved["process_docs"]) and resolved["process_docs"].__name__ == "process_docs"
    assert not callable(load_lm_eval_yaml(tmp_path / "task.yaml", resolve_functions=False)["process_docs"])
    (tmp_path / "task_utils.py").write_text("import a_package_nobody_installed\n")
    (tmp_path / "other.yaml").write_text("task: o\nprocess_docs: !function task_utils.process_docs\n")
    with pytest.raises(ModuleNotFoundError):
        load_lm_eval_yaml(tmp_path / "other.yaml", resolve_functions=True)


def test_slurm_submissions_are_recorded_with_dependencies_and_never_reach_sbatch(tmp_path):
    from datatrove.executor import slurm

    assert list(inspect.signature(slurm.launch_slurm_job).parameters)[:2] == ["launch_file_contents",
                                                                              "job_id_retriever"]

    def executor(name: str, depends=None) -> SlurmPipelineExecutor:
        return SlurmPipelineExecutor(pipeline=[], tasks=3, time="00:10:00", partition="cpu", job_name=name,
                                     logging_dir=str(tmp_path / name), depends=depends)

    second = executor("second", depends=executor("first"))
    with recorded_slurm_submissions() as submitted:
        second.run()  # runs the stage it depends on first, as on a cluster
    # per stage: its array job of 3 tasks, then the job that merges its stats
    assert len(submitted) == 4
    (_, first_script), _, (second_args, second_script), _ = submitted
    assert "#SBATCH --job-name=first" in first_script and "#SBATCH --array=0-2" in first_script
    assert "#SBATCH --partition=cpu" in first_script
    assert "#SBATCH --job-name=second" in second_script
    assert "--dependency=afterok:1" in second_args  # the first submission's id
    assert slurm.launch_slurm_job.__name__ == "launch_slurm_job"  # unpatched afterwards


@pytest.fixture
def models_route():
    """A loopback server answering ``GET /v1/models`` as an OpenAI-compatible one does."""
    class Models(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()  # HTTP/1.0: the body ends when the connection closes
            self.wfile.write(json.dumps({"object": "list", "data": [{"id": "m", "object": "model",
                                                                      "created": 0, "owned_by": "x"}]}).encode())

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Models)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_the_openai_client_sends_through_transports_of_its_own_http_package(models_route):
    http = openai_http_package()

    async def models(transport) -> list[str]:
        client = openai.AsyncOpenAI(base_url=models_route, api_key="k", max_retries=0,
                                    http_client=openai.DefaultAsyncHttpxClient(transport=transport))
        return [m.id for m in (await client.models.list()).data]

    assert asyncio.run(models(http.AsyncHTTPTransport(limits=http.Limits(max_connections=2)))) == ["m"]
    if http is not httpx:  # another package than the httpx the rest of the code uses: its transport fails
        with pytest.raises(Exception):  # noqa: B017 - an AssertionError in openai 3.63; any failure will do
            asyncio.run(models(httpx.AsyncHTTPTransport()))


def test_fasttext_predicts_every_text_most_probable_first():
    model = load_lid_model(LID176)
    german, chinese = fasttext_predict(model, ["Das ist ein Haus.\nUnd hier wohnen wir.", "这是我们住的房子。"], k=1)
    assert [label for label, _ in german] == ["__label__de"] and german[0][1] > 0.9
    assert [label for label, _ in chinese] == ["__label__zh"]
    everything = fasttext_predict(model, ["Hello, how are you today?"], k=-1)[0]
    assert len(everything) > 50 and everything[0][0] == "__label__en"
    probabilities = [p for _, p in everything]
    assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) == pytest.approx(1, abs=0.01)


def test_one_lookup_maps_codes_names_and_lid_labels_to_languages():
    assert find_language("__label__eng_Latn").code == "en"
    assert find_language("__label__zh").code == "zh" and find_language("German").code == "de"
    assert find_language("__label__eo") is None and find_language("xx") is None
