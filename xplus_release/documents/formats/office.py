"""Word (``.docx``, python-docx) and PowerPoint (``.pptx``, python-pptx): only the text of runs changes.

A paragraph is one unit; each group of adjacent runs with the same formatting is a pair ``<gN>…</gN>`` in it, so
bold, italic, hyperlinks, styles and fonts stay on the words they were on (see ``markup.prepare_runs``). Only the
text of ``w:t``/``a:t`` elements is rewritten: run properties, tabs, breaks, images, fields, tables, sections and
every other part of the package are written back by the library as they were read.

Word: the body (tables and nested tables included), and every header and footer a section defines (linked ones
are the previous section's and are translated once). PowerPoint: every shape of every slide (groups, tables,
placeholders) and the slide notes.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from io import BytesIO

import docx
import pptx
from docx.opc.exceptions import OpcError
from docx.oxml.ns import qn
from lxml import etree
from pptx.exc import PythonPptxError

# what python-docx/python-pptx raise on a file they cannot read: a missing part (KeyError), a wrong content type
# (ValueError: a .pptx named .docx), a broken zip or XML part, their own errors (PackageNotFoundError...)
READ_ERRORS = (KeyError, ValueError, TypeError, AttributeError, zipfile.BadZipFile, etree.XMLSyntaxError,
               OpcError, PythonPptxError)

from xplus_release.documents.errors import CorruptDocumentError
from xplus_release.documents.files import UnitBatch
from xplus_release.documents.markup import prepare_runs


@dataclass
class RunGroup:
    """Adjacent runs that look the same: their text is written into the first, the others emptied."""

    get: list[Callable[[], str]]
    set: list[Callable[[str], None]]

    def text(self) -> str:
        return "".join(get() for get in self.get)

    def write(self, text: str) -> None:
        self.set[0](text)
        for setter in self.set[1:]:
            setter("")


def translate_paragraphs(paragraphs: list[list[RunGroup]], batch: UnitBatch) -> None:
    """Translate every paragraph (a list of run groups) with one ``batch.translate`` call, in place."""
    prepared = [prepare_runs([group.text() for group in groups], True) for groups in paragraphs]
    translated = batch.translate([p.units for p in prepared])
    for groups, prep, translations in zip(paragraphs, prepared, translated):
        if not prep.units:
            continue
        for group, text in zip(groups, prep.finish(translations)):
            if text != group.text():
                group.write(text)


def group_runs(runs: list, key: Callable[[object], object], texts: Callable[[object], list]) -> list[RunGroup]:
    """Runs grouped while ``key`` (formatting, parent) stays the same; ``texts(run)`` gives its text elements."""
    groups: list[RunGroup] = []
    last = object()
    for run in runs:
        elements = texts(run)
        if not elements:  # a run of a break, tab, image or field between two runs keeps them apart
            last = object()
            continue
        run_key = key(run)
        if groups and run_key == last:
            groups[-1].get.extend(_getter(e) for e in elements)
            groups[-1].set.extend(_setter(e) for e in elements)
        else:
            groups.append(RunGroup([_getter(e) for e in elements], [_setter(e) for e in elements]))
        last = run_key
    return groups


def _getter(element) -> Callable[[], str]:
    return lambda: element.text or ""


def _setter(element) -> Callable[[str], None]:
    def write(text: str) -> None:
        element.text = text
        if text != text.strip() and element.tag.endswith("}t") and "wordprocessingml" in element.tag:
            element.set("{http://www.w3.org/XML/1998/namespace}space", "preserve")  # Word drops edge spaces

    return write


def _open(filename: str, data: bytes, opener: Callable, kind: str):
    try:
        return opener(BytesIO(data))
    except READ_ERRORS as err:
        raise CorruptDocumentError(
            f"{filename!r} cannot be read as a {kind} file ({type(err).__name__}: {err}): send it as saved by "
            f"{'Word' if kind == '.docx' else 'PowerPoint'} or LibreOffice, under its own extension"
        ) from None


# ---- Word


def translate_docx(data: bytes, batch: UnitBatch, filename: str) -> bytes:
    document = _open(filename, data, docx.Document, ".docx")
    paragraphs = [_docx_groups(p) for root in _docx_roots(document) for p in _docx_paragraphs(root)]
    translate_paragraphs(paragraphs, batch)
    out = BytesIO()
    document.save(out)
    return out.getvalue()


def _docx_roots(document) -> Iterator:
    """The body, then each header/footer part a section defines itself (each part once)."""
    yield document.element.body
    seen: set[int] = set()
    for section in document.sections:
        for part in (section.header, section.first_page_header, section.even_page_header,
                     section.footer, section.first_page_footer, section.even_page_footer):
            if part.is_linked_to_previous or id(part.part) in seen:
                continue
            seen.add(id(part.part))
            yield part._element  # the w:hdr/w:ftr element: python-docx has no public accessor for it


def _docx_paragraphs(root) -> Iterator:
    yield from root.iter(qn("w:p"))


def _docx_groups(paragraph) -> list[RunGroup]:
    """The runs of this paragraph (hyperlinks, insertions, smart tags included; not those of a text box inside
    it, which are its own paragraphs), grouped by formatting and by the hyperlink they belong to."""
    runs = [r for r in paragraph.iter(qn("w:r")) if next(r.iterancestors(qn("w:p"))) is paragraph]

    def key(run):
        rpr = run.find(qn("w:rPr"))
        plain = all(child.tag in (qn("w:rPr"), qn("w:t")) for child in run)  # tabs, breaks, images: own group
        return (etree.tostring(rpr) if rpr is not None else b"", run.getparent(), plain or id(run))

    return group_runs(runs, key, lambda run: run.findall(qn("w:t")))


# ---- PowerPoint


def translate_pptx(data: bytes, batch: UnitBatch, filename: str) -> bytes:
    presentation = _open(filename, data, pptx.Presentation, ".pptx")
    paragraphs = [_pptx_groups(p) for frame in _pptx_text_frames(presentation) for p in frame.paragraphs]
    translate_paragraphs(paragraphs, batch)
    out = BytesIO()
    presentation.save(out)
    return out.getvalue()


def _pptx_text_frames(presentation) -> Iterator:
    for slide in presentation.slides:
        yield from _shape_frames(slide.shapes)
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            yield slide.notes_slide.notes_text_frame


def _shape_frames(shapes) -> Iterator:
    for shape in shapes:
        if shape.shape_type is not None and hasattr(shape, "shapes"):  # a group: its shapes, at any depth
            yield from _shape_frames(shape.shapes)
        if getattr(shape, "has_text_frame", False) and shape.has_text_frame:
            yield shape.text_frame
        if getattr(shape, "has_table", False) and shape.has_table:
            for row in shape.table.rows:
                for cell in row.cells:
                    yield cell.text_frame


def _pptx_groups(paragraph) -> list[RunGroup]:
    """Runs grouped by formatting; a line break or field between two runs keeps them apart."""

    def key(run):
        rpr = run._r.rPr  # formatting and hyperlink live in a:rPr; python-pptx exposes no comparable value
        breaks = sum(1 for e in run._r.itersiblings(preceding=True) if e.tag.endswith(("}br", "}fld")))
        return (etree.tostring(rpr) if rpr is not None else b"", breaks)

    return group_runs(paragraph.runs, key, lambda run: [run._r.t])
