"""xplus-translate: a real translation through the server, and one-line errors for bad input."""

import pytest

from xplus_release.engines.server import VLLMServer
from xplus_release.errors import ServerStartError
from xplus_release.translate_cli import main


def test_translates_each_input_line_through_an_endpoint(vllm_server, tmp_path, capsys):
    source = tmp_path / "in.txt"
    source.write_text("Hello.\nHow are you?\nGood night.\n")
    out = tmp_path / "out.txt"
    code = main(["--endpoint", vllm_server.base_url, "--api-key", "test-key", "--model", "xplus-tiny",
                 "-s", "en", "-t", "swh_Latn", "--input", str(source), "--output", str(out), "--max-tokens", "6"])
    assert code == 0
    lines = out.read_text().split("\n")
    assert len(lines) == 4 and lines[-1] == ""  # one translation per input line, newline-terminated
    assert all("\n" not in line for line in lines)


def test_lines_are_translated_sentence_by_sentence_with_their_layout(vllm_server, tmp_path, capsys):
    source = tmp_path / "in.txt"
    source.write_text("  1. First sentence. Second one.\n\n\tLast.  \n")
    out = tmp_path / "out.txt"
    code = main(["--endpoint", vllm_server.base_url, "--api-key", "test-key", "--model", "xplus-tiny",
                 "-s", "en", "-t", "de", "--input", str(source), "--output", str(out), "--max-tokens", "1"])
    assert code == 0
    first, blank, last, end = out.read_text().split("\n")
    assert first.startswith("  1. ") and blank == "" and last.startswith("\t") and last.endswith("  ") and end == ""
    assert "warning: 3 of 3 sentence(s) stopped at --max-tokens 1" in capsys.readouterr().err  # blank: not sent


def test_a_file_argument_is_translated_into_name_target_ext(vllm_server, tmp_path, capsys):
    page = tmp_path / "page.html"
    page.write_text("<h1>Title here</h1>\n<p>First sentence. <b>Bold</b> second.</p>\n<script>x = 1;</script>\n")
    code = main(["--endpoint", vllm_server.base_url, "--api-key", "test-key", "--model", "xplus-tiny",
                 "-s", "en", "-t", "de", str(page), "--max-tokens", "4"])
    assert code == 0
    out = (tmp_path / "page.de.html").read_text()
    assert out.startswith("<h1>") and "</h1>\n<p>" in out and out.endswith("</p>\n<script>x = 1;</script>\n")
    assert out.count("<b>") == 1 and "wrote " in capsys.readouterr().err
    broken = tmp_path / "broken.docx"
    broken.write_bytes(b"not a zip")
    assert main(["--endpoint", vllm_server.base_url, "--model", "xplus-tiny", "-s", "en", "-t", "de",
                 str(broken)]) == 2
    assert capsys.readouterr().err.startswith("error: 'broken.docx' is not a .docx file")
    assert not (tmp_path / "broken.de.docx").exists()


def test_a_file_whose_translation_fails_leaves_no_output(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("One sentence. Another.\n")
    (tmp_path / "notes.de.txt").write_text("an earlier translation\n")
    assert main(["-s", "en", "-t", "de", "--endpoint", "http://127.0.0.1:9", "--model", "xplus-tiny",
                 str(notes)]) == 2
    assert capsys.readouterr().err.startswith("error: endpoint http://127.0.0.1:9/v1 is unreachable")
    assert (tmp_path / "notes.de.txt").read_text() == "an earlier translation\n"  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.de.txt", "notes.txt"]  # no partial file


@pytest.mark.parametrize("argv, message", [
    (["-s", "en", "-t", "xx", "hi"], "error: unknown language 'xx'"),
    (["-s", "en", "-t", "eng_Latn", "hi"], "error: source and target are both English"),
    (["-s", "en", "-t", "de", "--input", "/nonexistent.txt"], "error: --input /nonexistent.txt does not exist"),
    (["-s", "en", "-t", "de", "--model", "nonsense model", "hi"], "error: unknown model 'nonsense model'"),
    (["-s", "en", "-t", "de", "--endpoint", "http://127.0.0.1:9", "--model", "xplus-tiny", "hi"],
     "error: endpoint http://127.0.0.1:9/v1 is unreachable"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


def test_server_that_is_not_healthy_in_time_is_stopped(tiny_model, tmp_path):
    server = VLLMServer(tiny_model, log_path=tmp_path / "log", startup_timeout=2)
    with pytest.raises(ServerStartError, match="not healthy after 2s"):
        server.start()
    assert server.process.poll() is not None  # no orphan left running
