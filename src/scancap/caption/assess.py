"""How well the captioner describes a person's own photos (`scancap evaluate captioner`).

`read_references` reads a CSV of `path` and `caption` (several rows for one path: several
references) and `assess` scores generated captions against them: corpus BLEU-4 and CIDEr-D
(`scancap.caption.metrics`, scancap's tokenizer, so no Java is needed; the committed reports
use the PTB tokenizer, which gives slightly different numbers).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from scancap.page_table import read_page_table
from scancap.pages import DEFAULT_DPI, Page

SCORER = "pycocoevalcap"  # the COCO caption evaluation code (the `bench` extra)


def read_references(table: Path, dpi: int = DEFAULT_DPI) -> tuple[list[Page], dict[str, list[str]]]:
    """The pages the table names, each once and in order, and each page's references (by its
    name); a bad row is a `scancap.page_table.TableError` naming its line."""
    rows = read_page_table(table, ["caption"], dpi)
    pages = list(rows.drop_duplicates("name")["page"])
    references = rows.groupby("name", sort=False)["caption"].agg(list).to_dict()
    return pages, references


def require_scorer() -> None:
    """ModuleNotFoundError, saying what to install, where the scoring code is missing."""
    if importlib.util.find_spec(SCORER) is None:
        raise ModuleNotFoundError(
            f"scoring captions needs {SCORER}, which is not installed: "
            "pip install 'scancap[bench]' (make setup installs it)",
            name=SCORER,
        )


def assess(captions: dict[str, str], references: dict[str, list[str]]) -> dict[str, object]:
    """Corpus BLEU-4 and CIDEr-D of `captions` (page name -> caption) against `references`
    (page name -> its reference captions; a page without a caption, unreadable, is counted
    and left out), or None when no page has a caption."""
    from scancap.caption.metrics import caption_scores

    result: dict[str, object] = {
        "images": len(captions),
        "unreadable": len(references) - len(captions),
        "references": sum(len(references[name]) for name in captions),
        "BLEU-4": None,
        "CIDEr-D": None,
    }
    if captions:
        require_scorer()
        scores, _ = caption_scores(
            {name: references[name] for name in captions}, captions, meteor=False, ptb=False
        )
        result |= {"BLEU-4": scores["BLEU-4"], "CIDEr-D": scores["CIDEr-D"]}
    return result


def describe(result: dict[str, object]) -> str:
    """`assess`'s numbers as the short table `scancap evaluate captioner` prints."""
    unreadable = result["unreadable"]
    left_out = f", {unreadable} unreadable, left out" if unreadable else ""
    lines = [f"{'images':<12}{result['images']} ({result['references']} references{left_out})"]
    if not result["images"]:
        return "\n".join([*lines, "no image could be read: nothing to score"])
    return "\n".join(
        [
            *lines,
            f"{'BLEU-4':<12}{result['BLEU-4']:.4f}",
            f"{'CIDEr-D':<12}{result['CIDEr-D']:.4f}",
        ]
    )
