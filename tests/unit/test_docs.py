"""Generated docs (docs/config.md, the support table in docs/methods.md) must be current."""

from pathlib import Path

from tuneforge.config.reference import reference_text


def test_config_reference_is_current():
    doc = Path(__file__).parents[2] / "docs" / "config.md"
    assert doc.read_text() == reference_text() + "\n", (
        "regenerate: tuneforge config reference > docs/config.md"
    )


def test_methods_support_table_is_current():
    from tuneforge.methods import supports_table

    doc = (Path(__file__).parents[2] / "docs" / "methods.md").read_text()
    start = doc.index("<!-- generated: tuneforge ls methods --markdown -->\n") + len(
        "<!-- generated: tuneforge ls methods --markdown -->\n"
    )
    end = doc.index("\n<!-- end generated -->", start)
    assert doc[start:end] == supports_table(), (
        "regenerate the table in docs/methods.md: tuneforge ls methods --markdown"
    )
