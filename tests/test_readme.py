"""README's practical part quotes the code: every excerpt must still stand, word for word,
in the file its section names.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _excerpts() -> list[tuple[str, str, str]]:
    """(section heading, file path, code) for every code block of the practical part."""
    part = README.split("## Practical part", 1)[1].split("\n## ", 1)[0]
    found = []
    for section in re.split(r"\n(?=### )", part):
        heading = section.splitlines()[0]
        paths = re.findall(r"`([\w./-]+\.(?:py|js|css|html))`", heading)
        for code in re.findall(r"```[a-z]*\n(.*?)\n```", section, flags=re.S):
            found.append((heading, paths, code))
    return found


EXCERPTS = _excerpts()


def test_the_practical_part_has_excerpts_that_name_their_files():
    assert len(EXCERPTS) >= 10
    assert all(paths for _, paths, _ in EXCERPTS)


@pytest.mark.parametrize(
    ("heading", "paths", "code"),
    EXCERPTS,
    ids=[f"{h[4:40]}#{n}" for n, (h, _, _) in enumerate(EXCERPTS)],
)
def test_each_readme_excerpt_appears_verbatim_in_the_file_it_names(heading, paths, code):
    sources = {path: (ROOT / path).read_text() for path in paths}
    assert any(code in text for text in sources.values()), (
        f"README section {heading!r} quotes code that is no longer in {', '.join(paths)}:\n{code}"
    )
