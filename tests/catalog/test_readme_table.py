"""The README's metric table is `harvester metrics --markdown`, pasted: never written by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from harvester.cli import main

README = Path(__file__).resolve().parents[2] / "README.md"
BEGIN, END = "<!-- metrics table: begin -->\n", "<!-- metrics table: end -->"


def test_the_readme_table_is_the_commands_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["metrics", "--markdown"]) == 0
    printed = capsys.readouterr().out
    text = README.read_text(encoding="utf-8")
    pasted = text[text.index(BEGIN) + len(BEGIN) : text.index(END)]
    assert pasted == printed, "paste `harvester metrics --markdown` between the README's markers"


def test_the_table_is_by_kind_and_login(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["metrics", "--markdown", "--api-version", "v27.0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2] == "| kind | metric | login | details |"
    assert "| STORY | link_clicks | facebook | values |" in lines
    assert "| REEL | reels_skip_rate | facebook+instagram | values, fraction |" in lines
    kinds = [line.split(" | ")[0].removeprefix("| ") for line in lines[4:]]
    assert list(dict.fromkeys(kinds)) == ["PHOTO", "VIDEO", "CAROUSEL", "REEL", "STORY", "ACCOUNT"]
