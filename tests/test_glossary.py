"""The course text follows docs/glossary.md: one Japanese term per concept.

The table in the glossary is the single source: its "使わない表記" column lists the variants
this test looks for in docs/*.md, in README.md, in the Markdown cells of every notebook and in the
self-check messages (MyModules/checks/*.py). Code spans and code
blocks are not prose and are skipped; a variant that is part of an allowed compound (the fourth
column: 混合精度 contains 精度) is fine.

A file that cannot be fixed at once may be listed in PENDING with the variants it keeps, so the
check still fails on any new one; delete the entry once the file is fixed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GLOSSARY = ROOT / "docs" / "glossary.md"

# Files allowed to keep some variants for now (file -> variants); empty: every file follows the glossary.
PENDING: dict[str, set[str]] = {}


def glossary_rules() -> list[tuple[str, list[str], list[str]]]:
    """(term, variants, allowed compounds) per row of the glossary table."""
    rules = []
    for line in GLOSSARY.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 5 or cells[0] in ("用語", "---"):
            continue
        split = lambda text: [w.strip() for w in text.split(",") if w.strip()]  # noqa: E731
        rules.append((cells[0], split(cells[2]), split(cells[3])))
    return rules


def prose(text: str) -> str:
    """Markdown without code blocks and code spans (identifiers and quoted output are not prose)."""
    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    return re.sub(r"`[^`\n]*`", " ", text)


def variants_in(text: str, rules) -> dict[str, list[str]]:
    """{variant: [a few words around each use]} of the variants used outside allowed compounds."""
    found: dict[str, list[str]] = {}
    for term, variants, allowed in rules:
        for variant in variants:
            for match in re.finditer(re.escape(variant), text):
                start = match.start()
                if any(text.startswith(word, start - word.index(variant)) for word in allowed if variant in word):
                    continue
                found.setdefault(variant, []).append(f"{text[max(0, start - 12):start + len(variant) + 12]!r}"
                                                     f" -> {term}")
    return found


def course_texts() -> dict[str, str]:
    texts = {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8") for p in sorted((ROOT / "docs").glob("*.md"))
             if p != GLOSSARY}
    texts["README.md"] = (ROOT / "README.md").read_text(encoding="utf-8")  # Japanese prose around the commands
    for path in sorted(ROOT.glob("Exercise*/**/*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        texts[str(path.relative_to(ROOT))] = "\n\n".join(
            "".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    for path in sorted((ROOT / "MyModules" / "checks").glob("*.py")):  # the messages students read
        texts[str(path.relative_to(ROOT))] = path.read_text(encoding="utf-8")
    return texts


def test_glossary_table_is_read():
    rules = glossary_rules()
    terms = [term for term, _, _ in rules]
    assert {"チャンネル", "サーバー", "枝刈り", "正解率", "オプティマイザ", "チェックポイント", "ロジット", "study",
            "sampler", "pruner", "journal ファイル", "必修", "セルフチェック", "回"} <= set(terms)
    assert len(terms) == len(set(terms)), "a term appears twice in docs/glossary.md"
    all_variants = [v for _, variants, _ in rules for v in variants]
    assert not set(all_variants) & set(terms), "a variant of one row is the term of another"


def test_variant_finder_flags_variants_and_spares_compounds_and_code():
    rules = glossary_rules()
    text = prose("テスト精度は 62 %。混合精度で速くなる。チャネル数。`精度` と ```\nサーバ\n``` とサーバー。")
    assert set(variants_in(text, rules)) == {"精度", "チャネル"}
    assert len(variants_in(text, rules)["精度"]) == 1


@pytest.mark.parametrize("name", sorted(course_texts()))
def test_course_text_follows_the_glossary(name):
    found = variants_in(prose(course_texts()[name]), glossary_rules())
    new = {v: uses for v, uses in found.items() if v not in PENDING.get(name, set())}
    assert not new, f"{name} uses variants the glossary replaces (docs/glossary.md):\n" + "\n".join(
        f"  {v}: {', '.join(uses[:3])}" for v, uses in new.items())
