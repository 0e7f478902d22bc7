"""Config loading: good files become frozen settings, bad ones a one-line message naming the key."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harvester.config import (
    Config,
    ConfigError,
    GraphSettings,
    HarvestSettings,
    LimitSettings,
    RetrySettings,
    load_config,
    parse_config,
)
from harvester.models import Secret

TOKEN_A = "EAAGplantedTokenAlphaZZ9x7QkV2mB3nR8sT1uW4yX6zA0cD5eF"
TOKEN_B = "IGQVJplantedTokenBravoYY8w6PjU1lA2mC7qS0tV3xZ5bE9dG"
SECRET = "app-secret-planted-0f1e2d3c4b5a"
ENV = {"IG_TOKEN_A": TOKEN_A, "IG_TOKEN_B": TOKEN_B, "META_APP_SECRET": SECRET}

ACCOUNT_A = '[[accounts]]\nid = "17841400000000001"\ntoken_env = "IG_TOKEN_A"\n'
ACCOUNT_B = '[[accounts]]\nid = "17841400000000002"\ntoken_env = "IG_TOKEN_B"\n'
OUTPUT = '[output]\npath = "lake"\n'
MINIMAL = OUTPUT + ACCOUNT_A
CSV_HEADER = "id,token_env\n"


@pytest.fixture
def base_dir(tmp_path: Path) -> Path:
    (tmp_path / "occupied").write_text("a file where a folder should be")
    return tmp_path


def parse(text: str, base_dir: Path, env: dict[str, str] | None = None) -> Config:
    return parse_config(text, source="cfg.toml", base_dir=base_dir, env=ENV if env is None else env)


# (case id, config text, accounts.csv text or None, expected message; {base} is the config folder)
MALFORMED = [
    ("toml-syntax", "[graph\n" + MINIMAL, None,
     "cfg.toml: TOML syntax: Expected ']' at the end of a table declaration (at line 1, column 7)"),
    ("unknown-table", '[grpah]\napi_version = "v21.0"\n' + MINIMAL, None,
     "cfg.toml: [grpah]: unknown table; did you mean 'graph'?"),
    ("table-not-table", "limits = 5\n" + MINIMAL, None,
     "cfg.toml: [limits]: expected a table, got integer"),
    ("unknown-key", '[graph]\napi_verison = "v21.0"\n' + MINIMAL, None,
     "cfg.toml: [graph].api_verison: unknown key; did you mean 'api_version'?"),
    ("unknown-key-no-match", "[retry]\nzzz = 1\n" + MINIMAL, None,
     "cfg.toml: [retry].zzz: unknown key; valid keys: "
     "max_attempts, base_delay_seconds, max_delay_seconds, run_budget, fail_fast_seconds"),
    ("version-short", '[graph]\napi_version = "v17"\n' + MINIMAL, None,
     "cfg.toml: [graph].api_version: 'v17' is not a version like 'v21.0'"),
    ("version-type", "[graph]\napi_version = 21.0\n" + MINIMAL, None,
     "cfg.toml: [graph].api_version: expected a string, got float"),
    ("base-url-version", '[graph]\nbase_url = "https://graph.facebook.com/v21.0"\n' + MINIMAL,
     None, "cfg.toml: [graph].base_url: 'https://graph.facebook.com/v21.0' must be scheme and "
     "host only; set the version in [graph].api_version"),
    ("base-url-scheme", '[graph]\nbase_url = "ftp://graph.facebook.com"\n' + MINIMAL, None,
     "cfg.toml: [graph].base_url: 'ftp://graph.facebook.com' is not an http(s) URL"),
    ("timeout-zero", "[graph]\ntimeout_seconds = 0\n" + MINIMAL, None,
     "cfg.toml: [graph].timeout_seconds: must be > 0, got 0"),
    ("fail-fast-negative", "[retry]\nfail_fast_seconds = -1\n" + MINIMAL, None,
     "cfg.toml: [retry].fail_fast_seconds: must be >= 0, got -1"),
    ("fail-fast-type", "[retry]\nfail_fast_seconds = true\n" + MINIMAL, None,
     "cfg.toml: [retry].fail_fast_seconds: expected a number, got boolean"),
    ("app-secret-unset", '[graph]\napp_secret_env = "NO_SUCH_SECRET"\n' + MINIMAL, None,
     "cfg.toml: [graph].app_secret_env: environment variable 'NO_SUCH_SECRET' is unset or empty"),
    ("output-missing", ACCOUNT_A, None,
     "cfg.toml: [output].path: missing (the lake's folder or s3:// URI)"),
    ("output-empty", '[output]\npath = " "\n' + ACCOUNT_A, None,
     "cfg.toml: [output].path: must not be empty"),
    ("output-is-file", '[output]\npath = "occupied"\n' + ACCOUNT_A, None,
     "cfg.toml: [output].path: '{base}/occupied' exists and is not a directory"),
    ("output-under-file", '[output]\npath = "occupied/lake"\n' + ACCOUNT_A, None,
     "cfg.toml: [output].path: '{base}/occupied' is a file, so '{base}/occupied/lake' "
     "cannot be created"),
    ("output-scheme", '[output]\npath = "gs://bucket/lake"\n' + ACCOUNT_A, None,
     "cfg.toml: [output].path: scheme 'gs' is not supported; use a folder or s3://"),
    ("output-s3-no-bucket", '[output]\npath = "s3://"\n' + ACCOUNT_A, None,
     "cfg.toml: [output].path: 's3://' names no bucket"),
    ("row-group-bool", MINIMAL.replace('"lake"', '"lake"\nrow_group_rows = true'), None,
     "cfg.toml: [output].row_group_rows: expected an integer, got boolean"),
    ("row-group-zero", MINIMAL.replace('"lake"', '"lake"\nrow_group_rows = 0'), None,
     "cfg.toml: [output].row_group_rows: must be >= 1, got 0"),
    ("row-group-float", MINIMAL.replace('"lake"', '"lake"\nrow_group_rows = 1.5'), None,
     "cfg.toml: [output].row_group_rows: expected an integer, got float"),
    ("batch-rows-gone", MINIMAL.replace('"lake"', '"lake"\nbatch_rows = 10'), None,
     "cfg.toml: [output].batch_rows: unknown key; valid keys: path, row_group_rows, "
     "row_group_mb, target_file_mb, compression, checkpoint_seconds, lock_stale_seconds, "
     "s3_endpoint"),
    ("row-group-mb-zero", MINIMAL.replace('"lake"', '"lake"\nrow_group_mb = 0'), None,
     "cfg.toml: [output].row_group_mb: must be > 0, got 0"),
    ("lock-stale-zero", MINIMAL.replace('"lake"', '"lake"\nlock_stale_seconds = 0'), None,
     "cfg.toml: [output].lock_stale_seconds: must be > 0, got 0"),
    ("lock-stale-string", MINIMAL.replace('"lake"', '"lake"\nlock_stale_seconds = "2m"'), None,
     "cfg.toml: [output].lock_stale_seconds: expected a number, got string"),
    ("target-mb-string", MINIMAL.replace('"lake"', '"lake"\ntarget_file_mb = "big"'), None,
     "cfg.toml: [output].target_file_mb: expected a number, got string"),
    ("compression", MINIMAL.replace('"lake"', '"lake"\ncompression = "lzo"'), None,
     "cfg.toml: [output].compression: 'lzo' is not one of zstd, snappy, gzip, brotli, lz4, none"),
    ("pct-range", "[limits]\nstop_at_pct = 150\n" + MINIMAL, None,
     "cfg.toml: [limits].stop_at_pct: must be in (0, 100], got 150"),
    ("pct-zero", "[limits]\nslow_down_at_pct = 0\n" + MINIMAL, None,
     "cfg.toml: [limits].slow_down_at_pct: must be > 0, got 0"),
    ("stop-below-slow", "[limits]\nslow_down_at_pct = 80\nstop_at_pct = 70\n" + MINIMAL, None,
     "cfg.toml: [limits].stop_at_pct: 70 is below [limits].slow_down_at_pct (80)"),
    ("calls-negative", "[limits]\napp_calls_per_hour = -5\n" + MINIMAL, None,
     "cfg.toml: [limits].app_calls_per_hour: must be >= 1, got -5"),
    ("delay-cap-below-base", "[retry]\nbase_delay_seconds = 5\nmax_delay_seconds = 1\n" + MINIMAL,
     None, "cfg.toml: [retry].max_delay_seconds: 1 is below [retry].base_delay_seconds (5)"),
    ("bool-as-int", "[harvest]\nstories = 1\n" + MINIMAL, None,
     "cfg.toml: [harvest].stories: expected true or false, got integer"),
    ("page-size", "[harvest]\nmedia_page_size = 500\n" + MINIMAL, None,
     "cfg.toml: [harvest].media_page_size: must be <= 100, got 500"),
    ("facebook-views", "[harvest]\nfacebook_views = \"no\"\n" + MINIMAL, None,
     "cfg.toml: [harvest].facebook_views: expected true or false, got string"),
    ("refusals-in-a-row", "[harvest]\nconditional_refusals_in_a_row = 0\n" + MINIMAL, None,
     "cfg.toml: [harvest].conditional_refusals_in_a_row: must be >= 1, got 0"),
    ("no-accounts", OUTPUT, None,
     "cfg.toml: [[accounts]]: no accounts (add [[accounts]] or [sources].accounts_csv)"),
    ("accounts-not-tables", 'accounts = ["1"]\n' + OUTPUT, None,
     "cfg.toml: [[accounts]]: expected an array of tables"),
    ("account-unknown-key", OUTPUT + '[[accounts]]\nid = "1"\ntoken = "IG_TOKEN_A"\n', None,
     "cfg.toml: accounts[1].token: unknown key; did you mean 'token_env'?"),
    ("account-id-int", OUTPUT + '[[accounts]]\nid = 17841400000000001\ntoken_env = "IG_TOKEN_A"\n',
     None, "cfg.toml: accounts[1].id: expected a string of digits, got integer (quote it)"),
    ("account-id-letters", OUTPUT + '[[accounts]]\nid = "brand_a"\ntoken_env = "IG_TOKEN_A"\n',
     None, "cfg.toml: accounts[1].id: 'brand_a' is not all digits"),
    ("account-no-token-env", OUTPUT + '[[accounts]]\nid = "1"\n', None,
     "cfg.toml: accounts[1].token_env: missing (the environment variable holding the token)"),
    ("token-env-unset", MINIMAL + ACCOUNT_B + '[[accounts]]\nid = "3"\ntoken_env = "IG_TOKEN_C"\n',
     None, "cfg.toml: accounts[3].token_env: environment variable 'IG_TOKEN_C' is unset or empty"),
    ("token-env-bad-name", OUTPUT + '[[accounts]]\nid = "1"\ntoken_env = "IG-TOKEN"\n', None,
     "cfg.toml: accounts[1].token_env: 'IG-TOKEN' is not an environment variable name"),
    ("token-pasted", OUTPUT + f'[[accounts]]\nid = "1"\ntoken_env = "{TOKEN_A}"\n', None,
     "cfg.toml: accounts[1].token_env: looks like a token, not an environment variable name "
     "(value not shown)"),
    ("duplicate-id", MINIMAL + ACCOUNT_B + ACCOUNT_A, None,
     "cfg.toml: accounts[3]: account '17841400000000001' is also at accounts[1]"),
    ("csv-missing", MINIMAL + '[sources]\naccounts_csv = "nope.csv"\n', None,
     "cfg.toml: [sources].accounts_csv: file '{base}/nope.csv' not found"),
    ("csv-unknown-key", MINIMAL + '[sources]\naccounts_cvs = "a.csv"\n', None,
     "cfg.toml: [sources].accounts_cvs: unknown key; did you mean 'accounts_csv'?"),
    ("csv-empty", MINIMAL + '[sources]\naccounts_csv = "accounts.csv"\n', "\n\n",
     "cfg.toml: [sources].accounts_csv: '{base}/accounts.csv' is empty "
     "(expected header 'id,token_env')"),
    ("csv-no-header", MINIMAL + '[sources]\naccounts_csv = "accounts.csv"\n',
     "17841400000000002,IG_TOKEN_B\n",
     "cfg.toml: [sources].accounts_csv line 1: header must be 'id,token_env' (or token_file; "
     "then optionally login), "
     "got '17841400000000002,IG_TOKEN_B'"),
    ("csv-columns", MINIMAL + '[sources]\naccounts_csv = "accounts.csv"\n',
     CSV_HEADER + "\n17841400000000002,IG_TOKEN_B,extra\n",
     "cfg.toml: [sources].accounts_csv line 3: expected 2 fields (id,token_env), got 3"),
    ("csv-id", MINIMAL + '[sources]\naccounts_csv = "accounts.csv"\n',
     CSV_HEADER + "17841400000000002,IG_TOKEN_B\nx17,IG_TOKEN_B\n",
     "cfg.toml: [sources].accounts_csv line 3: id 'x17' is not all digits"),
    ("csv-token-unset", MINIMAL + '[sources]\naccounts_csv = "accounts.csv"\n',
     CSV_HEADER + "17841400000000002,IG_TOKEN_B\n\n\n\n\n17841400000000007,IG_TOKEN_G\n",
     "cfg.toml: [sources].accounts_csv line 7: environment variable 'IG_TOKEN_G' is unset or "
     "empty"),
    ("csv-token-empty-cell", MINIMAL + '[sources]\naccounts_csv = "accounts.csv"\n',
     CSV_HEADER + "17841400000000002,\n",
     "cfg.toml: [sources].accounts_csv line 2: empty (name the environment variable)"),
    ("csv-token-as-id", MINIMAL + '[sources]\naccounts_csv = "accounts.csv"\n',
     CSV_HEADER + f"{TOKEN_B},IG_TOKEN_B\n",
     "cfg.toml: [sources].accounts_csv line 2: id (a 51-character value, not shown) is not all "
     "digits"),
    ("csv-duplicate", MINIMAL + '[sources]\naccounts_csv = "accounts.csv"\n',
     CSV_HEADER + "17841400000000001,IG_TOKEN_B\n",
     "cfg.toml: [sources].accounts_csv line 2: account '17841400000000001' is also at accounts[1]"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "csv_text", "expected"),
    [
        pytest.param(text, csv_text, expected, id=case)
        for case, text, csv_text, expected in MALFORMED
    ],
)
def test_malformed_config_gives_one_line_naming_the_key(
    base_dir: Path, text: str, csv_text: str | None, expected: str
) -> None:
    if csv_text is not None:
        (base_dir / "accounts.csv").write_text(csv_text)
    with pytest.raises(ConfigError) as caught:
        parse(text, base_dir, env={k: v for k, v in ENV.items() if k != "META_APP_SECRET"})
    message = str(caught.value)
    assert message == expected.format(base=base_dir)
    assert "\n" not in message
    assert not any(secret in message for secret in ENV.values())


def test_minimal_config_takes_documented_defaults(base_dir: Path) -> None:
    config = parse(MINIMAL, base_dir)
    assert config.graph == GraphSettings()
    assert config.limits == LimitSettings()
    assert config.retry == RetrySettings()
    assert config.harvest == HarvestSettings()
    assert config.output.path == str(base_dir / "lake")
    assert (config.output.row_group_rows, config.output.compression) == (131_072, "zstd")
    assert config.output.lock_stale_seconds == 120.0
    assert config.source == "cfg.toml"
    [account] = config.accounts
    assert (account.id, account.token_env, account.token) == (
        "17841400000000001",
        "IG_TOKEN_A",
        Secret(TOKEN_A),
    )


def test_every_setting_is_read(base_dir: Path) -> None:
    text = (
        """
[graph]
base_url = "http://127.0.0.1:8080/"
api_version = "v17.0"
app_secret_env = "META_APP_SECRET"
timeout_seconds = 5
connect_timeout_seconds = 2.5
[output]
path = "s3://bucket/prefix/"
row_group_rows = 20
row_group_mb = 2.5
target_file_mb = 0.5
compression = "SNAPPY"
checkpoint_seconds = 30
lock_stale_seconds = 45
s3_endpoint = "http://127.0.0.1:9000/"
[limits]
max_accounts_in_flight = 2
max_requests_in_flight = 3
max_requests_per_account = 4
account_calls_per_hour = 200
app_calls_per_hour = 5000
slow_down_at_pct = 50
stop_at_pct = 50
regain_unit_seconds = 0.01
probe_seconds = 0.5
probe_max_seconds = 9
[retry]
max_attempts = 1
base_delay_seconds = 0
max_delay_seconds = 0
run_budget = 0
fail_fast_seconds = 0
[harvest]
stories = false
media_insights = false
media_page_size = 25
breakdowns = false
lookback_days = 3
profiles = false
"""
        + ACCOUNT_A
    )
    config = parse(text, base_dir)
    assert config.graph == GraphSettings("http://127.0.0.1:8080", "v17.0", Secret(SECRET), 5.0, 2.5)
    assert dataclasses.astuple(config.output) == (
        "s3://bucket/prefix",
        20,
        2.5,
        0.5,
        "snappy",
        30.0,
        45.0,
        "http://127.0.0.1:9000",
    )
    assert config.limits == LimitSettings(2, 3, 4, 200, 5000, 50.0, 50.0, 0.01, 0.5, 9.0)
    assert config.retry == RetrySettings(1, 0.0, 0.0, 0, 0.0)
    assert config.harvest == HarvestSettings(
        False, False, 25, False, lookback_days=3, profiles=False
    )


def test_csv_accounts_merge_after_toml_accounts(base_dir: Path) -> None:
    (base_dir / "lists").mkdir()
    # A spreadsheet export: byte-order mark, CRLF, padding, blank lines.
    csv_text = "\ufeffid , token_env\r\n\r\n 17841400000000002 , IG_TOKEN_B \r\n\r\n"
    (base_dir / "lists" / "accounts.csv").write_text(csv_text, newline="")
    text = MINIMAL + '[sources]\naccounts_csv = "lists/accounts.csv"\n'
    config = parse(text, base_dir)
    assert [(a.id, a.token_env, a.token) for a in config.accounts] == [
        ("17841400000000001", "IG_TOKEN_A", Secret(TOKEN_A)),
        ("17841400000000002", "IG_TOKEN_B", Secret(TOKEN_B)),
    ]


def test_csv_only_accounts(base_dir: Path) -> None:
    rows = "".join(f"178414000000{i:05d},IG_TOKEN_B\n" for i in range(1000))
    (base_dir / "accounts.csv").write_text(CSV_HEADER + rows)
    config = parse(OUTPUT + '[sources]\naccounts_csv = "accounts.csv"\n', base_dir)
    assert len(config.accounts) == 1000
    assert config.accounts[-1].id == "17841400000000999"


def test_load_config_resolves_paths_from_the_file_and_reads_injected_env(tmp_path: Path) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    (folder / "accounts.csv").write_text(CSV_HEADER + "17841400000000002,IG_TOKEN_B\n")
    path = folder / "harvest.toml"
    path.write_text(MINIMAL + '[sources]\naccounts_csv = "accounts.csv"\n')
    config = load_config(path, env=ENV)
    assert config.output.path == str(folder / "lake")
    assert config.source == str(path)
    assert [a.id for a in config.accounts] == ["17841400000000001", "17841400000000002"]


def test_load_config_defaults_to_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "harvest.toml"
    path.write_text(MINIMAL)
    monkeypatch.setenv("IG_TOKEN_A", "from-process-env")
    assert load_config(path).accounts[0].token == Secret("from-process-env")


def test_load_config_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^.*missing\.toml: file: not found$"):
        load_config(tmp_path / "missing.toml", env=ENV)


def test_config_is_frozen_and_never_shows_tokens(base_dir: Path) -> None:
    config = parse('[graph]\napp_secret_env = "META_APP_SECRET"\n' + MINIMAL + ACCOUNT_B, base_dir)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.graph.api_version = "v1.0"  # type: ignore[misc]
    shown = repr(config) + str(config)
    assert not any(secret in shown for secret in ENV.values())


def test_example_config_is_valid(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[1] / "configs" / "example.toml"
    env = {"META_APP_SECRET": SECRET, "IG_TOKEN_BRAND_A": TOKEN_A, "IG_TOKEN_BRAND_B": TOKEN_B}
    config = load_config(example, env=env)
    assert config.graph.app_secret == Secret(SECRET)
    assert config.accounts


# Hypothesis: whatever the text, the parser answers with a Config or a one-line ConfigError.
_KEYS = st.sampled_from(
    [
        "api_version",
        "base_url",
        "path",
        "row_group_rows",
        "stop_at_pct",
        "stories",
        "app_secret_env",
    ]
)
_VALUES = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True),
    st.text(max_size=30),
).map(lambda v: repr(v).lower() if isinstance(v, bool) else _toml_scalar(v))


def _toml_scalar(value: object) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, float) and value != value:
        return "nan"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    return repr(value)


@settings(max_examples=150)
@given(
    table=st.sampled_from(["graph", "output", "limits", "retry", "harvest"]),
    key=_KEYS,
    value=_VALUES,
)
def test_any_setting_value_is_accepted_or_named(
    tmp_path_factory: pytest.TempPathFactory, table: str, key: str, value: str
) -> None:
    base = tmp_path_factory.getbasetemp()
    text = f"[{table}]\n{key} = {value}\n" + (OUTPUT if table != "output" else "") + ACCOUNT_A
    try:
        parse(text, base)
    except ConfigError as exc:
        assert "\n" not in str(exc)
        assert str(exc).startswith("cfg.toml: ")


@settings(max_examples=150)
@given(text=st.text(max_size=200))
def test_arbitrary_text_never_crashes_the_parser(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    try:
        parse(text, tmp_path_factory.getbasetemp())
    except ConfigError as exc:
        assert "\n" not in str(exc)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write any folder, so none is read-only")
def test_a_read_only_lake_is_refused_only_for_writing(tmp_path: Path) -> None:
    """`plan` and `check` read the config with writing=False: they never write the lake."""
    lake = tmp_path / "lake"
    lake.mkdir()
    lake.chmod(0o555)
    try:
        with pytest.raises(ConfigError, match=r"\[output\].path: '.*lake' is not writable"):
            parse(MINIMAL, tmp_path)
        config = parse_config(MINIMAL, source="cfg.toml", base_dir=tmp_path, env=ENV, writing=False)
        assert config.output.path == str(lake)
    finally:
        lake.chmod(0o755)
