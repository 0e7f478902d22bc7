"""Competitors in the config: [[competitors]], [sources].competitors_csv and [harvest]
competitor_media, each error one line naming the key (or the CSV line)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harvester.config import Competitor, ConfigError, HarvestSettings, parse_config

ENV = {"IG_TOKEN_A": "EAAGplantedTokenAlphaZZ9x7QkV2mB3nR8sT1uW4yX6zA0cD5eF"}
BASE = '[output]\npath = "lake"\n[[accounts]]\nid = "17841400000000001"\ntoken_env = "IG_TOKEN_A"\n'


def parse(text: str, base_dir: Path, csv: str | None = None) -> tuple[Competitor, ...]:
    if csv is not None:
        (base_dir / "competitors.csv").write_text(csv)
        text = '[sources]\ncompetitors_csv = "competitors.csv"\n' + text
    config = parse_config(text + BASE, source="cfg.toml", base_dir=base_dir, env=ENV)
    return config.competitors


def test_tables_and_csv_merge(tmp_path: Path) -> None:
    text = (
        '[[competitors]]\nusername = "BlueBottle"\n'
        '[[competitors]]\nusername = "@la_colombe"\nvia = "17841400000000001"\n'
    )
    csv = "username,via\nstumptown,\nintelligentsia.coffee,17841400000000001\n"
    assert parse(text, tmp_path, csv) == (
        Competitor("bluebottle"),
        Competitor("la_colombe", "17841400000000001"),
        Competitor("stumptown"),
        Competitor("intelligentsia.coffee", "17841400000000001"),
    )
    assert parse('[[competitors]]\nusername = "x"\n', tmp_path, "username\ny\n\n") == (
        Competitor("x"),
        Competitor("y"),
    )


def test_defaults() -> None:
    assert HarvestSettings().competitor_media == 100


def test_competitor_media(tmp_path: Path) -> None:
    config = parse_config(
        BASE + "[harvest]\ncompetitor_media = 0\n", source="c", base_dir=tmp_path, env=ENV
    )
    assert (config.harvest.competitor_media, config.competitors) == (0, ())


# (case id, config text, competitors.csv or None, expected message)
MALFORMED = [
    ("duplicate-case", '[[competitors]]\nusername = "Shop"\n[[competitors]]\nusername = "shop"\n',
     None, "cfg.toml: competitors[2].username: competitor 'shop' is also at competitors[1]"),
    ("duplicate-csv", '[[competitors]]\nusername = "shop"\n', "username\nSHOP\n",
     "cfg.toml: [sources].competitors_csv line 2: competitor 'shop' is also at competitors[1]"),
    ("missing-username", '[[competitors]]\nvia = "17841400000000001"\n', None,
     "cfg.toml: competitors[1].username: missing (the competitor's Instagram username)"),
    ("bad-username", '[[competitors]]\nusername = "shop){id}"\n', None,
     "cfg.toml: competitors[1].username: 'shop){{id}}' is not an Instagram username "
     "(letters, digits, '.' and '_', at most 30)"),
    ("bad-via", '[[competitors]]\nusername = "shop"\nvia = "me"\n', None,
     "cfg.toml: competitors[1].via: 'me' is not all digits"),
    ("unknown-via", '[[competitors]]\nusername = "shop"\nvia = "17841400000000009"\n', None,
     "cfg.toml: competitors[1].via: account '17841400000000009' is not a configured account"),
    ("unknown-key", '[[competitors]]\nusername = "shop"\nthrough = "1"\n', None,
     "cfg.toml: competitors[1].through: unknown key; valid keys: username, via"),
    ("not-array", 'competitors = "shop"\n', None,
     "cfg.toml: [[competitors]]: expected an array of tables"),
    ("media-negative", "[harvest]\ncompetitor_media = -1\n", None,
     "cfg.toml: [harvest].competitor_media: must be >= 0, got -1"),
    ("csv-header", "", "name\nshop\n",
     "cfg.toml: [sources].competitors_csv line 1: header must be 'username' or 'username,via', "
     "got 'name'"),
    ("csv-fields", "", "username,via\nshop\n",
     "cfg.toml: [sources].competitors_csv line 2: expected 2 fields (username,via), got 1"),
    ("csv-empty", "", "",
     "cfg.toml: [sources].competitors_csv: '{base}/competitors.csv' is empty "
     "(expected header 'username[,via]')"),
    ("csv-bad-name", "", "username\nno spaces\n",
     "cfg.toml: [sources].competitors_csv line 2: 'no spaces' is not an Instagram username "
     "(letters, digits, '.' and '_', at most 30)"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "csv", "message"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED]
)
def test_malformed(tmp_path: Path, text: str, csv: str | None, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(text, tmp_path, csv)
    assert str(caught.value) == message.format(base=tmp_path)


def test_csv_not_found(tmp_path: Path) -> None:
    text = '[sources]\ncompetitors_csv = "nope.csv"\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE + text, source="cfg.toml", base_dir=tmp_path, env=ENV)
    assert (
        str(caught.value)
        == f"cfg.toml: [sources].competitors_csv: file '{tmp_path}/nope.csv' not found"
    )


def test_via_is_checked_at_run_time_with_discovery(tmp_path: Path) -> None:
    """With discovery the accounts are found at run time: any all-digit via is accepted here."""
    text = (
        '[output]\npath = "lake"\n[discovery]\ntoken_env = "IG_TOKEN_A"\n'
        '[[competitors]]\nusername = "shop"\nvia = "17841400000000009"\n'
    )
    config = parse_config(text, source="c", base_dir=tmp_path, env=ENV)
    assert config.competitors == (Competitor("shop", "17841400000000009"),)
