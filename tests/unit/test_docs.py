"""The documentation against the code: docs/results.md's flag table is the code's flag
definitions (src/starbatch/engine/flags.py) exactly, and every relative link in
README.md and docs/*.md points to a file (and heading) that exists."""

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from starbatch.engine import flags

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FLAG_TABLE = "<!-- flag-table -->"
# A Markdown link or image: [text](target) or ![alt](target); the target up to a space
# (a title may follow) or the closing parenthesis.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
CODE_SPAN = re.compile(r"`[^`\n]*`")


def flag_rows(text: str) -> list[dict]:
    """The rows of the table that follows the flag-table marker."""
    assert FLAG_TABLE in text, f"docs/results.md has no {FLAG_TABLE} marker before its table"
    lines = text.split(FLAG_TABLE, 1)[1].strip().splitlines()
    table = []
    for line in lines:
        if not line.startswith("|"):
            break
        table.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    header, rule, *rows = table
    assert set(rule) <= {"---"} or all(set(c) <= set("-: ") for c in rule), rule
    return [dict(zip(header, (c.strip("`") for c in row), strict=True)) for row in rows]


def expected_rows() -> list[dict]:
    """The table as the code defines it: one row per bit, in the order of DESCRIPTIONS."""
    rows = []
    for value, text in flags.DESCRIPTIONS.items():
        name, meaning = text.split(": ", 1)
        rows.append(
            {
                "bit": str(value.bit_length() - 1),
                "value": str(value),
                "flag": name,
                "meaning": meaning,
                "no result": "yes" if value & flags.FAILED else "no",
                "analysis failed": "yes" if value & flags.ANALYSIS_FAILED else "no",
            }
        )
    return rows


def markdown(rows: list[dict]) -> str:
    return "\n".join(
        f"| {r['bit']} | {r['value']} | `{r['flag']}` | {r['meaning']} | {r['no result']} "
        f"| {r['analysis failed']} |"
        for r in rows
    )


def test_the_flag_table_is_the_codes_flag_definitions():
    documented = flag_rows((REPO / "docs/results.md").read_text())
    expected = expected_rows()
    assert documented == expected, (
        "docs/results.md's flag table differs from src/starbatch/engine/flags.py; "
        "the rows the code defines:\n" + markdown(expected)
    )


def test_every_bit_of_the_code_is_a_named_flag():
    """What the table test relies on: each bit a distinct power of two named in its text,
    and the module's constant of that name is that bit."""
    names = [text.split(": ", 1)[0] for text in flags.DESCRIPTIONS.values()]
    assert len(set(names)) == len(names)
    for value, name in zip(flags.DESCRIPTIONS, names, strict=True):
        assert value > 0 and value & (value - 1) == 0, name
        assert getattr(flags, name) == value, name


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation but - and _ dropped, spaces
    as hyphens."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text())
    seen: dict[str, int] = {}
    out = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, re.M):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(path: Path) -> list[str]:
    """The targets of the page's links, outside code blocks and code spans."""
    text = CODE_SPAN.sub("", FENCE.sub("", path.read_text()))
    return LINK.findall(text)


def relative(target: str) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I)  # http:, mailto:, ...


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_points_to_an_existing_file(page):
    broken = []
    for target in filter(relative, links(page)):
        file_part, _, anchor = target.partition("#")
        dest = (page.parent / unquote(file_part)).resolve() if file_part else page
        if not dest.exists():
            broken.append(f"{target}: no file {dest}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.relative_to(REPO)}")
    assert not broken, f"{page.relative_to(REPO)}: broken links:\n" + "\n".join(broken)


def test_the_link_check_sees_links():
    """A guard against a pattern that matches nothing."""
    assert "docs/concepts.md" in links(REPO / "README.md")
    assert any(t.startswith("concepts.md#") for t in links(REPO / "docs/results.md"))
