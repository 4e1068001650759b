"""Files through ``xplus_release.documents.files.translate_file``: each format read back with its own library.

``translate_units`` is a deterministic stand-in (words written backwards with every mask kept, or every mask
lost), not xplus-tiny: the structure guarantees must hold for any model output, and a stand-in makes the
expected text exact. The real model path is tested end to end by the server tests of ``/v1/translate_file``.
Every file is built in the test with the library that reads it back.
"""

from __future__ import annotations

import io
import re
import zipfile

import docx
import pptx
import pytest
import srt
import webvtt
from docx.opc.constants import RELATIONSHIP_TYPE
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from lxml import etree
from markdown_it import MarkdownIt
from pptx.util import Inches
from translate.storage import xliff, xliff2

from xplus_release.documents.errors import DocumentError
from xplus_release.documents.files import SUPPORTED_EXTENSIONS, FileLimits, media_type, translate_file
from xplus_release.documents.masking import MASK_RE

WORD = re.compile(r"(<[^<>]*>)|([^\W\d_]+)")
LIMITS = FileLimits()


def backwards(units: list[str]) -> list[str]:
    """Each word written backwards, every mask kept in place: a model that keeps the placeholders."""
    return [WORD.sub(lambda m: m.group(1) or m.group(2)[::-1], unit) for unit in units]


def masks_lost(units: list[str]) -> list[str]:
    """Every mask dropped and the words upper-cased: a model that ignores the tags."""
    return [MASK_RE.sub("", unit).upper() for unit in units]


def identity(units: list[str]) -> list[str]:
    return list(units)


# ---- text formats


def test_txt_keeps_paragraph_separators_byte_for_byte():
    data = "\ufeffFirst paragraph, line one\nline two.\n\n  \n\tIndented second {name}.\r\n\r\nThird\n".encode()
    assert translate_file("notes.txt", data, identity, LIMITS) == data
    out = translate_file("notes.txt", data, backwards, LIMITS).decode("utf-8")
    assert out == "\ufefftsriF hpargarap, enil eno\nenil owt.\n\n  \n\tdetnednI dnoces {name}.\r\n\r\ndrihT\n"


def test_html_file_round_trip_is_exact_and_text_translated():
    page = b'<!DOCTYPE html><html><body><p class="a">Hello <b>world</b> &amp; co.</p><pre>x  y</pre></body></html>'
    assert translate_file("page.html", page, identity, LIMITS) == page
    out = translate_file("page.HTM", page, backwards, LIMITS)
    assert out == b'<!DOCTYPE html><html><body><p class="a">olleH <b>dlrow</b> &amp; oc.</p><pre>x  y</pre></body></html>'


MARKDOWN = """# Release **notes**

Install with `pip install xplus` and read [the guide](https://example.com/guide "Guide").
Second line of the same paragraph.

> A quoted line
> and its continuation.

1. First *step*
2. Second step
   continued here

| Name | Value |
|------|-------|
| speed | fast |

```python
print("Hello world")  # never translated
```

    indented code block

<div>raw html block</div>
"""


def block_code(markdown: str) -> list[str]:
    return [t.content for t in MarkdownIt("commonmark").parse(markdown) if t.type in ("fence", "code_block")]


def token_types(markdown: str) -> list[str]:
    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    return [t.type for t in tokens] + [c.type for t in tokens for c in (t.children or [])]


@pytest.mark.parametrize("model", [backwards, masks_lost], ids=lambda f: f.__name__)
def test_markdown_structure_and_code_blocks_are_kept(model):
    assert translate_file("README.md", MARKDOWN.encode(), identity, LIMITS) == MARKDOWN.encode()
    out = translate_file("README.md", MARKDOWN.encode(), model, LIMITS).decode()
    assert block_code(out) == block_code(MARKDOWN)
    assert "<div>raw html block</div>" in out and "`pip install xplus`" in out
    assert "](https://example.com/guide \"Guide\")" in out
    markers = re.compile(r"[\s#>|\-\d.]*")  # headings, quotes, list markers, table pipes, indentation
    assert [markers.match(line).group() for line in out.splitlines()] == [
        markers.match(line).group() for line in MARKDOWN.splitlines()]
    if model is backwards:
        assert token_types(out) == token_types(MARKDOWN)
        assert "> A detouq enil\n> dna sti noitaunitnoc." in out


SRT = """1
00:00:01,000 --> 00:00:03,500
Hello <i>there</i>, {name}!

2
00:00:0x,000 --> 00:00:05,000
This cue's timing is broken.

3
00:00:05,000 --> 00:00:07,250 X1:40 X2:600
Two lines
of text.

"""


def test_srt_timings_and_numbering_untouched_and_broken_cue_kept_as_it_was():
    out = translate_file("film.srt", SRT.encode(), backwards, LIMITS).decode()
    before = list(srt.parse(SRT, ignore_errors=True))
    after = list(srt.parse(out, ignore_errors=True))
    assert [(s.index, s.start, s.end, s.proprietary) for s in after] == [
        (s.index, s.start, s.end, s.proprietary) for s in before]
    assert [s.content for s in after] == ["olleH <i>ereht</i>, {name}!", "owT senil\nfo txet."]
    assert "2\n00:00:0x,000 --> 00:00:05,000\nThis cue's timing is broken.\n" in out
    assert re.sub(r"[^\d:,>\- \n]", "", out).count("-->") == 3


VTT = """WEBVTT - release video

NOTE written by hand, not translated

STYLE
::cue { color: yellow }

intro
00:00:01.000 --> 00:00:04.000 align:start position:10%
<v Anna>Hello <b>world</b></v>

00:05.000 --> 00:07.000
Second cue
two lines
"""


def test_vtt_timings_settings_and_other_blocks_untouched():
    out = translate_file("film.vtt", VTT.encode(), backwards, LIMITS).decode()
    before, after = webvtt.from_string(VTT), webvtt.from_string(out)
    assert [(c.identifier, c.start, c.end, str(c.settings)) for c in after.captions] == [
        (c.identifier, c.start, c.end, str(c.settings)) for c in before.captions]
    assert [c.raw_text for c in after.captions] == ["<v Anna>olleH <b>dlrow</b></v>", "dnoceS euc\nowt senil"]
    assert out.split("intro")[0] == VTT.split("intro")[0]  # header, NOTE and STYLE blocks


# ---- Office formats


def add_hyperlink(paragraph, url: str, text: str) -> None:
    """python-docx reads hyperlinks but has no call that writes one: built from its oxml parts."""
    r_id = paragraph.part.relate_to(url, RELATIONSHIP_TYPE.HYPERLINK, is_external=True)
    link = OxmlElement("w:hyperlink")
    link.set(qn("r:id"), r_id)
    run = OxmlElement("w:r")
    text_element = OxmlElement("w:t")
    text_element.text = text
    run.append(text_element)
    link.append(run)
    paragraph._p.append(link)


def build_docx() -> bytes:
    document = docx.Document()
    document.add_heading("Annual report", level=1)
    paragraph = document.add_paragraph("Sales were ")
    paragraph.add_run("very").bold = True
    paragraph.add_run(" good").italic = True
    paragraph.add_run(" this year, see ")
    add_hyperlink(paragraph, "https://example.com/report", "the report")
    paragraph.add_run(".")
    broken = document.add_paragraph("Line one")
    broken.add_run().add_break()
    broken.add_run("Line two")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Region", "Total"
    table.cell(1, 0).text = "North"
    table.cell(1, 1).paragraphs[0].add_run("Rising").bold = True
    section = document.sections[0]
    section.header.paragraphs[0].text = "Company header"
    section.footer.paragraphs[0].text = "Page footer"
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def runs_of(paragraph) -> list[tuple]:
    return [(run.text, run.bold, run.italic, run.style.name if run.style else None) for run in paragraph.runs]


def test_docx_runs_formatting_hyperlinks_tables_headers_and_footers_are_kept():
    source = docx.Document(io.BytesIO(build_docx()))
    out = docx.Document(io.BytesIO(translate_file("report.docx", build_docx(), backwards, LIMITS)))
    assert len(out.paragraphs) == len(source.paragraphs)
    for before, after in zip(source.paragraphs, out.paragraphs):
        assert after.style.name == before.style.name
        assert [r[1:] for r in runs_of(after)] == [r[1:] for r in runs_of(before)]
    assert [r[0] for r in runs_of(out.paragraphs[1])] == ["selaS erew ", "yrev", " doog", " siht raey, ees ", "."]
    assert out.paragraphs[0].text == "launnA troper"
    assert out.paragraphs[2].text == "eniL eno\neniL owt"  # the break stays between the lines
    (link,) = out.paragraphs[1].hyperlinks
    assert (link.address, link.text) == ("https://example.com/report", "eht troper")
    cells = [[cell.text for cell in row.cells] for row in out.tables[0].rows]
    assert cells == [["noigeR", "latoT"], ["htroN", "gnisiR"]]
    assert out.tables[0].cell(1, 1).paragraphs[0].runs[0].bold is True
    assert out.sections[0].header.paragraphs[0].text == "ynapmoC redaeh"
    assert out.sections[0].footer.paragraphs[0].text == "egaP retoof"


def test_docx_runs_keep_their_formatting_when_the_model_loses_every_tag():
    out = docx.Document(io.BytesIO(translate_file("report.docx", build_docx(), masks_lost, LIMITS)))
    source = docx.Document(io.BytesIO(build_docx()))
    assert [[r[1:] for r in runs_of(p)] for p in out.paragraphs] == [
        [r[1:] for r in runs_of(p)] for p in source.paragraphs]
    assert "SALES WERE VERY GOOD" in out.paragraphs[1].text.replace("  ", " ")


def build_pptx() -> bytes:
    presentation = pptx.Presentation()
    slide = presentation.slides.add_slide(presentation.slide_layouts[1])
    slide.shapes.title.text = "Quarterly results"
    body = slide.placeholders[1].text_frame
    body.text = "Revenue grew"
    paragraph = body.add_paragraph()
    bold = paragraph.add_run()
    bold.text, bold.font.bold = "Strong ", True
    link = paragraph.add_run()
    link.text = "details online"
    link.hyperlink.address = "https://example.com/q3"
    table = slide.shapes.add_table(1, 2, Inches(1), Inches(4), Inches(4), Inches(1)).table
    table.cell(0, 0).text, table.cell(0, 1).text = "Costs", "Flat"
    group = slide.shapes.add_group_shape()
    group.shapes.add_textbox(Inches(5), Inches(5), Inches(2), Inches(1)).text_frame.text = "Grouped note"
    slide.shapes.add_textbox(Inches(1), Inches(6), Inches(3), Inches(1)).text_frame.text = "Line one\vLine two"
    slide.notes_slide.notes_text_frame.text = "Speaker notes here"
    out = io.BytesIO()
    presentation.save(out)
    return out.getvalue()


def test_pptx_runs_hyperlinks_tables_groups_and_notes_are_kept():
    out = pptx.Presentation(io.BytesIO(translate_file("deck.pptx", build_pptx(), backwards, LIMITS)))
    slide = out.slides[0]
    assert slide.shapes.title.text == "ylretrauQ stluser"
    paragraphs = slide.placeholders[1].text_frame.paragraphs
    assert [(r.text, r.font.bold, r.hyperlink.address) for r in paragraphs[1].runs] == [
        ("gnortS ", True, None), ("sliated enilno", None, "https://example.com/q3")]
    assert paragraphs[0].text == "euneveR werg"
    table = next(shape for shape in slide.shapes if shape.has_table).table
    assert [table.cell(0, 0).text, table.cell(0, 1).text] == ["stsoC", "talF"]
    group = next(shape for shape in slide.shapes if shape.shape_type == pptx.enum.shapes.MSO_SHAPE_TYPE.GROUP)
    assert group.shapes[0].text_frame.text == "depuorG eton"
    assert slide.notes_slide.notes_text_frame.text == "rekaepS seton ereh"
    broken = [shape for shape in slide.shapes if shape.has_text_frame and "\v" in shape.text_frame.text]
    assert [r.text for r in broken[0].text_frame.paragraphs[0].runs] == ["eniL eno", "eniL owt"]  # break kept between


# ---- XLIFF

XLIFF_12 = b"""<?xml version="1.0" encoding="UTF-8"?>
<xliff version="1.2" xmlns="urn:oasis:names:tc:xliff:document:1.2">
  <file original="app.properties" source-language="en" target-language="de" datatype="plaintext">
    <header><note>Exported by the app</note></header>
    <body>
      <trans-unit id="greeting"><source>Hello {name}, welcome back!</source></trans-unit>
      <trans-unit id="bold"><source>Press <g id="1">Save</g> <x id="2"/> now</source><target state="new"/>
        <note>shown on the toolbar</note></trans-unit>
      <trans-unit id="brand" translate="no"><source>Qwen3-XPlus</source></trans-unit>
    </body>
  </file>
</xliff>
"""

XLIFF_20 = b"""<?xml version="1.0" encoding="UTF-8"?>
<xliff xmlns="urn:oasis:names:tc:xliff:document:2.0" version="2.0" srcLang="en" trgLang="fr">
  <file id="f1">
    <unit id="u1"><segment><source>Save the file</source></segment></unit>
    <unit id="u2"><notes><note>a note</note></notes><segment state="initial"><source>Open %s now</source></segment></unit>
  </file>
</xliff>
"""


@pytest.mark.parametrize("model", [backwards, masks_lost], ids=lambda f: f.__name__)
def test_xliff_12_every_target_filled_state_set_rest_kept(model):
    out = translate_file("app.xlf", XLIFF_12, model, LIMITS)
    store = xliff.xlifffile.parsestring(out)
    units = {unit.getid().split("\x04")[-1]: unit for unit in store.units}
    assert units["greeting"].target.count("{name}") == 1
    for name in ("greeting", "bold"):
        target = units[name].getlanguageNode(lang=None, index=1)
        assert units[name].target.strip() and target.get("state") == "translated"
        assert target.get("state-qualifier") == "mt-suggestion"
    assert not units["brand"].target and b"<source>Qwen3-XPlus</source></trans-unit>" in out
    root = etree.fromstring(out)
    ns = {"x": "urn:oasis:names:tc:xliff:document:1.2"}
    bold_target = root.find(".//x:trans-unit[@id='bold']/x:target", ns)
    codes = [(e.tag.split("}")[1], e.get("id")) for e in bold_target.iterdescendants()]
    assert codes == [("g", "1"), ("x", "2")]  # each code once (nested in <g> when the model lost both)
    assert root.find(".//x:header/x:note", ns).text == "Exported by the app"
    assert root.find(".//x:trans-unit[@id='bold']/x:note", ns).text == "shown on the toolbar"
    if model is backwards:
        assert units["bold"].target == "sserP evaS  won"  # <g>/<x/> codes flatten to their text


def test_xliff_20_every_target_filled_and_state_set():
    out = translate_file("app.xliff", XLIFF_20, backwards, LIMITS)
    store = xliff2.Xliff2File.parsestring(out)
    assert [(unit.getid(), unit.target) for unit in store.units] == [
        ("u1", "evaS eht elif"), ("u2", "nepO %s won")]
    ns = {"x": "urn:oasis:names:tc:xliff:document:2.0"}
    root = etree.fromstring(out)
    assert [s.get("state") for s in root.iterfind(".//x:segment", ns)] == ["translated", "translated"]
    assert root.find(".//x:note", ns).text == "a note"


# ---- limits and bad input


def test_media_types_and_supported_extensions():
    assert media_type("Deck.PPTX") == "application/vnd.openxmlformats-officedocument.presentationml.presentation"
    assert set(SUPPORTED_EXTENSIONS) >= {".txt", ".html", ".md", ".srt", ".vtt", ".docx", ".pptx", ".xlf", ".xliff"}


def bomb_docx(inflated_bytes: int) -> bytes:
    """A real .docx plus one member of zeros: small on the wire, ``inflated_bytes`` once inflated."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(build_docx())) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for info in source.infolist():
            z.writestr(info, source.read(info))
        with z.open("word/media/padding.bin", "w", force_zip64=True) as member:
            chunk = bytes(1 << 20)
            for _ in range(inflated_bytes >> 20):
                member.write(chunk)
    return out.getvalue()


def test_zip_bomb_is_413_before_anything_is_inflated(monkeypatch):
    bomb = bomb_docx(64 << 20)
    assert len(bomb) < 1 << 20
    opened = []
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, *a, **k: opened.append(a) or pytest.fail("inflated"))
    with pytest.raises(DocumentError) as caught:
        translate_file("bomb.docx", bomb, backwards, FileLimits(max_inflated_bytes=32 << 20))
    assert caught.value.status == 413 and "inflate" in str(caught.value) and opened == []


def corrupt_docx() -> bytes:
    data = bytearray(build_docx())
    return bytes(data[: len(data) // 2])  # cut in half: the zip directory is gone


def docx_without_document_part() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(build_docx())) as source, zipfile.ZipFile(out, "w") as z:
        for info in source.infolist():
            if info.filename != "word/document.xml":
                z.writestr(info, source.read(info))
    return out.getvalue()


BAD_INPUTS = [
    ("notes.pdf", b"%PDF-1.7", 415, ".txt, .html"),
    ("notes", b"text", 415, "no extension"),
    ("empty.txt", b"", 422, "empty"),
    ("blank.md", b"  \n\t\n", 422, "empty"),
    ("half.docx", corrupt_docx(), 422, "not a readable zip"),
    ("nodoc.docx", docx_without_document_part(), 422, "cannot be read as a .docx"),
    ("deck-named.docx", build_pptx(), 422, "cannot be read as a .docx"),
    ("report-named.pptx", build_docx(), 422, "cannot be read as a .pptx"),
    ("text-named.docx", b"just some text", 422, "not a readable zip"),
    ("zip-named.txt", build_docx(), 422, "binary data"),
    ("latin1.txt", "caf\xe9 cr\xe8me".encode("latin-1"), 422, "save it as UTF-8"),
    ("plain.srt", b"No cues in this file at all.\n", 422, "no subtitle cue"),
    ("plain.vtt", b"00:01.000 --> 00:02.000\nNo header\n", 422, "WEBVTT"),
    ("broken.xlf", b"<xliff version='1.2'><file>", 422, "not well-formed XML"),
    ("other.xliff", b"<?xml version='1.0'?><html><body>Hi</body></html>", 422, "not XLIFF"),
    ("deep.html", b"<div>" * 100_000, 422, "nested more than 512"),
]


@pytest.mark.parametrize(("filename", "data", "status", "words"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_is_a_4xx_naming_the_fix_and_nothing_is_sent(filename, data, status, words):
    sent = []
    with pytest.raises(DocumentError) as caught:
        translate_file(filename, data, lambda units: sent.extend(units) or units, LIMITS)
    assert caught.value.status == status and words in str(caught.value)
    assert "\n" not in str(caught.value) and sent == []


def test_size_and_segment_limits_are_413():
    with pytest.raises(DocumentError) as too_big:
        translate_file("a.txt", b"Hello world. " * 100, identity, FileLimits(max_file_bytes=1000))
    assert too_big.value.status == 413 and "--max-file-bytes" in str(too_big.value)
    many = "\n\n".join(f"Paragraph number {i}." for i in range(30)).encode()
    with pytest.raises(DocumentError) as too_many:
        translate_file("a.txt", many, identity, FileLimits(max_segments=20))
    assert too_many.value.status == 413 and "30 segments" in str(too_many.value)


def test_one_call_to_translate_units_per_file():
    calls = []
    translate_file("report.docx", build_docx(), lambda units: calls.append(len(units)) or backwards(units), LIMITS)
    assert len(calls) == 1 and calls[0] >= 8  # heading, paragraph, 4 cells, header, footer


def test_xliff_external_entities_are_not_resolved(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    data = (f'<?xml version="1.0"?><!DOCTYPE xliff [<!ENTITY leak SYSTEM "file://{secret}">]>'
            '<xliff version="1.2" xmlns="urn:oasis:names:tc:xliff:document:1.2"><file original="a" '
            'source-language="en" datatype="plaintext"><body><trans-unit id="t"><source>Hello &leak; world'
            "</source></trans-unit></body></file></xliff>").encode()
    sent = []
    with pytest.raises(DocumentError) as caught:
        translate_file("a.xlf", data, lambda units: sent.extend(units) or backwards(units), LIMITS)
    assert caught.value.status == 422 and "DOCTYPE" in str(caught.value) and sent == []
    assert "TOPSECRET" not in str(caught.value)
