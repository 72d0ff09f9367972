"""The German catalogue covers every UI string: the strings are extracted afresh (as scripts/i18n does, but
into a temporary .pot, so no file of the tree changes) and each must have a German translation in
messages.po — present, not fuzzy, not empty — and in the compiled messages.mo the server reads."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "app" / "translations" / "de" / "LC_MESSAGES"


def extracted(tmp_path: Path):
    pot = tmp_path / "messages.pot"
    pybabel = Path(sys.executable).with_name("pybabel")
    subprocess.run([str(pybabel), "-q", "extract", "-F", "babel.cfg", "--no-location", "-o", str(pot), "."],
                   cwd=ROOT, check=True, capture_output=True, timeout=300)
    with pot.open("rb") as fh:
        return read_po(fh)


def untranslated(template, catalogue) -> list[str]:
    missing = []
    for message in template:
        if not message.id:
            continue
        found = catalogue.get(message.id, message.context)
        strings = () if found is None else (found.string if isinstance(found.string, tuple) else (found.string,))
        if found is None or found.fuzzy or not strings or not all(strings):
            missing.append(message.id if isinstance(message.id, str) else message.id[0])
    return missing


def test_every_ui_string_has_a_german_translation(tmp_path):
    template = extracted(tmp_path)
    assert len([m for m in template if m.id]) > 50, "extraction found the UI strings"
    with (CATALOGUE / "messages.po").open("rb") as fh:
        po = read_po(fh)
    missing = untranslated(template, po)
    assert not missing, f"{len(missing)} UI strings lack a German translation (run scripts/i18n): {missing}"


def test_the_compiled_catalogue_matches_the_translations(tmp_path):
    template = extracted(tmp_path)
    with (CATALOGUE / "messages.mo").open("rb") as fh:
        mo = read_mo(fh)
    missing = untranslated(template, mo)
    assert not missing, f"messages.mo lacks {len(missing)} translations (run scripts/i18n to compile): {missing}"
