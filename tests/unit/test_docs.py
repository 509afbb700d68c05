"""docs/config.md is generated from the schema and must be current."""

from pathlib import Path

from tuneforge.config.reference import reference_text


def test_config_reference_is_current():
    doc = Path(__file__).parents[2] / "docs" / "config.md"
    assert doc.read_text() == reference_text() + "\n", (
        "regenerate: tuneforge config reference > docs/config.md"
    )
