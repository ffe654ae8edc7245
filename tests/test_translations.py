"""The message catalogues under locale/: every text translated, none fuzzy, and none
stale (collecting the texts again finds exactly the msgids the catalogues hold).
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import polib
import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "locale"
CATALOGUES = sorted(LOCALE.glob("*/LC_MESSAGES/*.po"))
# As `make makemessages` collects them: the same folders left out.
IGNORED = [".venv", "node_modules", "tests", "bench", "docs", "staticfiles"]
DOMAINS = ["django", "djangojs"]


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _msgids(path: Path) -> set[tuple[str | None, str, str]]:
    """The catalogue's texts: (context, msgid, plural msgid), obsolete entries aside."""
    return {(entry.msgctxt, entry.msgid, entry.msgid_plural) for entry in polib.pofile(path)}


def _nplurals(catalogue: polib.POFile) -> int:
    match = re.search(r"nplurals\s*=\s*(\d+)", catalogue.metadata.get("Plural-Forms", ""))
    assert match, "the catalogue's header has no Plural-Forms"
    return int(match.group(1))


def test_there_are_catalogues_for_each_domain():
    assert {path.stem for path in CATALOGUES} >= set(DOMAINS), CATALOGUES


@pytest.mark.parametrize("path", CATALOGUES, ids=_name)
def test_every_text_is_translated_and_none_is_fuzzy(path):
    catalogue = polib.pofile(path)
    assert not catalogue.metadata_is_fuzzy, f"{_name(path)}: the header is marked fuzzy"
    nplurals = _nplurals(catalogue)
    if path.parts[-3] == "ru":
        assert nplurals == 3, "Russian has three plural forms (1, 2-4, 5-20)"
    fuzzy = [entry.msgid for entry in catalogue if "fuzzy" in entry.flags]
    assert not fuzzy, f"{_name(path)}: fuzzy entries (check, translate, drop the flag): {fuzzy}"
    untranslated = []
    for entry in catalogue:
        if entry.msgid_plural:
            forms = [entry.msgstr_plural.get(n, "") for n in range(nplurals)]
            if not all(form.strip() for form in forms):
                untranslated.append(entry.msgid)
        elif not entry.msgstr.strip():
            untranslated.append(entry.msgid)
    assert not untranslated, f"{_name(path)}: untranslated: {untranslated}"


@pytest.mark.parametrize("path", CATALOGUES, ids=_name)
def test_every_catalogue_compiles_with_matching_placeholders(path):
    if not shutil.which("msgfmt"):
        _skip_or_fail_without_gettext()
    # --check-format: a translation's %(name)s placeholders must match its msgid's.
    result = subprocess.run(
        ["msgfmt", "--check-format", "-o", os.devnull, str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def _skip_or_fail_without_gettext():
    message = "GNU gettext (xgettext, msgfmt) is not installed: run `make gettext`"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    """Collects the texts of the code as `make makemessages` does, in a copy of the project.

    makemessages writes next to the nearest locale/ it finds above each file, so it
    runs in a copy (code, templates, scripts and catalogues; no .mo files) and the
    project's own catalogues stay untouched.
    """
    if not shutil.which("xgettext"):
        _skip_or_fail_without_gettext()
    from django.test.utils import override_settings

    copy = tmp_path_factory.mktemp("project")
    left_out = shutil.ignore_patterns(
        *IGNORED, ".*", "__pycache__", "*.mo", "*.sqlite3*", "*.egg-info", "media", "backups"
    )
    shutil.copytree(ROOT, copy, ignore=left_out, dirs_exist_ok=True)
    languages = sorted({path.parts[-3] for path in CATALOGUES})
    here = os.getcwd()
    # makemessages walks the current folder and writes to the first LOCALE_PATHS.
    os.chdir(copy)
    try:
        with override_settings(LOCALE_PATHS=[copy / "locale"]):
            for domain in DOMAINS:
                call_command(
                    "makemessages",
                    locale=languages,
                    domain=domain,
                    ignore_patterns=IGNORED,
                    no_obsolete=True,
                    verbosity=0,
                )
    finally:
        os.chdir(here)
    return copy / "locale"


@pytest.mark.parametrize("path", CATALOGUES, ids=_name)
def test_catalogue_holds_exactly_the_texts_of_the_code(path, collected):
    committed = _msgids(path)
    fresh = _msgids(collected / path.relative_to(LOCALE))
    missing = sorted(msgid for _, msgid, _ in fresh - committed)
    extra = sorted(msgid for _, msgid, _ in committed - fresh)
    assert not missing and not extra, (
        f"{_name(path)} is stale: run `make makemessages` and translate. "
        f"Texts in the code but not in the catalogue: {missing}. "
        f"In the catalogue but no longer in the code: {extra}."
    )
