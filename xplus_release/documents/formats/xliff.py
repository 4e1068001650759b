"""XLIFF 1.2 and 2.0 (``.xlf``/``.xliff``) through translate-toolkit: every translatable unit gets a target.

The source's inline codes (``<g>``, ``<x/>``, ``<bx/>``, ``<ex/>``, ``<ph>``...) are read as translate-toolkit's
placeables and masked like HTML inline elements, so the target carries the same codes around the same words. A
filled target is marked as machine output: XLIFF 1.2 ``state="translated"`` with
``state-qualifier="mt-suggestion"``, XLIFF 2.0 segment ``state="translated"``. Headers, notes, skeletons, units
with ``translate="no"`` and the file's own indentation are left as they were (the library's re-indentation is
turned off).
"""

from __future__ import annotations

import copy
from typing import ClassVar

from lxml import etree
from translate.storage import xliff, xliff2
from translate.storage.placeables import StringElem
from translate.storage.placeables.base import G

from xplus_release.documents.errors import CorruptDocumentError
from xplus_release.documents.files import UnitBatch
from xplus_release.documents.masking import Unit, UnitBuilder


class Xliff12(xliff.xlifffile):
    XMLindent: ClassVar[dict] = {}  # keep the file's own layout: the library re-indents by default


class Xliff20(xliff2.Xliff2File):
    XMLindent: ClassVar[dict] = {}


def translate_xliff(data: bytes, batch: UnitBatch, filename: str) -> bytes:
    store = _parse(data, filename)
    todo = [(unit, _masked(unit)) for unit in store.units if _translatable(unit)]
    todo = [(unit, masked) for unit, masked in todo if masked is not None]
    (translated,) = batch.translate([[masked.text for _, masked in todo]])
    for (unit, masked), translation in zip(todo, translated):
        unit.rich_target = [_rich(masked, translation)]
        _mark_machine_translated(unit)
    return bytes(store)


def _parse(data: bytes, filename: str):
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as err:
        raise CorruptDocumentError(f"{filename!r} is not well-formed XML ({err}): send a valid XLIFF file") from None
    if etree.QName(root).localname != "xliff":
        raise CorruptDocumentError(
            f"{filename!r} is XML but not XLIFF (root <{etree.QName(root).localname}>): send an XLIFF 1.2 or 2.0 file"
        )
    if root.getroottree().docinfo.internalDTD is not None:  # XLIFF has no DTD; entities could read local files
        raise CorruptDocumentError(f"{filename!r} declares a DOCTYPE: XLIFF needs none, remove it and send again")
    version = root.get("version", "")
    if version not in ("1.2", "2.0", "2.1"):
        raise CorruptDocumentError(f"{filename!r} is XLIFF {version or 'of no version'}: send XLIFF 1.2 or 2.0")
    store_class = Xliff20 if version.startswith("2") else Xliff12
    try:
        return store_class.parsestring(data)
    except (AssertionError, ValueError, KeyError, AttributeError, etree.XMLSyntaxError) as err:  # asserts the root
        raise CorruptDocumentError(f"{filename!r} cannot be read as XLIFF {version} ({err})") from None


def _translatable(unit) -> bool:
    return not unit.isheader() and unit.istranslatable() and bool((unit.source or "").strip())


def _masked(unit) -> Unit | None:
    """The unit's source as a masked unit: text as text, ``<g>``-like codes as pairs, the other codes atoms."""
    builder = UnitBuilder(placeholders=True)
    for element in unit.rich_source:
        _walk(element, builder)
    return builder.build()


def _walk(element: StringElem, builder: UnitBuilder) -> None:
    for sub in element.sub:
        if isinstance(sub, str):
            builder.text(sub)
        elif isinstance(sub, G):
            builder.open([sub], "g")
            _walk(sub, builder)
            builder.close([sub], "g")
        elif type(sub) is StringElem:
            _walk(sub, builder)
        else:
            builder.atom([sub])


def _rich(masked: Unit, translation: str) -> StringElem:
    """The target as placeables: each code of the source once, around the words the model put it around."""
    stack: list[list] = [[]]
    for kind, value in masked.items(translation):
        if kind == "text":
            stack[-1].append(StringElem([value]))
        elif kind == "atom":
            code = masked.masks[value].raw[0]
            stack[-1].append(StringElem([code]) if isinstance(code, str) else copy.deepcopy(code))
        elif kind == "open":
            stack.append([])
        else:
            pair = copy.copy(masked.masks[value].raw[0])
            pair.sub = stack.pop()
            stack[-1].append(pair)
    return StringElem(stack[0])


def _mark_machine_translated(unit) -> None:
    if isinstance(unit, xliff2.Xliff2Unit):
        unit.marktranslated()
        return
    target = unit.getlanguageNode(lang=None, index=1)
    target.set("state", "translated")
    target.set("state-qualifier", "mt-suggestion")
