"""The README documents the store contract as the code defines it."""

from pathlib import Path

from tools.store.contract import describe_markdown

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_store_contract_matches_the_ddl():
    assert describe_markdown() in README.read_text(encoding="utf-8")


def test_readme_gives_the_two_setup_commands_first():
    text = README.read_text(encoding="utf-8")
    first_block = text.split("```")[1]
    assert "make demo" in first_block and "make test" in first_block
