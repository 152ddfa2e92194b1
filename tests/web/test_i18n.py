"""Russian and English complete: every English text in the web UI has its Russian line."""

from __future__ import annotations

from webui.i18n import extract_messages, untranslated


def test_every_text_of_the_web_ui_is_translated_into_russian() -> None:
    assert len(extract_messages()) > 50  # the extraction itself works
    missing = untranslated("ru")
    listing = "\n".join(f"{where}: {text}" for text, where in sorted(missing.items()))
    assert not missing, f"untranslated (run `python -m webui.i18n`):\n{listing}"
