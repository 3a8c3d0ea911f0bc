"""Secrets in connection URLs: never accepted as text in params.yaml, filled from the environment whatever they
contain, and never shown, in any position, with any of the characters URLs treat specially."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote_plus, urlsplit

import pytest
import yaml

from pipelines.config import ParamsError, load_params
from pipelines.urls import fill_references, find_literal_secrets, redact
from pipelines.warehouse import WarehouseError, connect_warehouse, redact_url
from tests.conftest import POSTGRES_URL_ENV

# Passwords holding every character a URL parser treats specially.
PASSWORDS = ["Kq7@Zw9", "Kq7/Zw9/Jx4", "Kq7:Zw9:Jx4", "Kq7?Zw9", "Kq7#Zw9", "Kq7%25Zw9%", "Kq7+Zw9",
             "S3cr3t@PW/:?#%+ Zw9end"]


def _params(tmp_path: Path, warehouse_url: str, tracking_uri: str = "sqlite:///mlruns.db") -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"warehouse": {"url": warehouse_url}, "mlflow": {"tracking_uri": tracking_uri}}))
    return path


def _fragments(secret: str) -> list[str]:
    """Pieces of a secret long enough to give it away (what a naive redaction leaves between special characters)."""
    return [piece for piece in re.split(r"[@/:?#%+ ]", secret) if len(piece) >= 3] + [secret]


@pytest.mark.parametrize("url", [
    "postgres://alice:hunter2@db.example.com/prod",
    "postgres://:hunter2@db.example.com/prod",
    "postgres://alice:p@ss/w@db.example.com/prod",
    "postgres://alice@db.example.com/prod?password=hunter2",
    "postgres://alice@db.example.com/prod?sslmode=require&sslpassword=hunter2",
    "snowflake://alice@acct/DB/SCHEMA?warehouse=WH&private_key_passphrase=hunter2",
    "bigquery://project/dataset?credentials=hunter2",
])
def test_a_secret_written_in_the_file_is_refused_in_any_position(tmp_path, url):
    with pytest.raises(ParamsError, match=r"warehouse\.url: .* is written in the file") as error:
        load_params(_params(tmp_path, url))
    assert "hunter2" not in str(error.value) and "p@ss" not in str(error.value)
    with pytest.raises(ParamsError, match=r"mlflow\.tracking_uri: .* is written in the file"):
        load_params(_params(tmp_path, "duckdb://w.duckdb", tracking_uri=url))


def test_references_and_plain_urls_are_accepted():
    for url in ("postgres://alice:${PW}@h/db", "postgres://alice@h/db?password=${PW}", "duckdb://data/w.duckdb",
                "postgres://alice@h:5432/db?sslmode=require", "sqlite:///mlruns.db"):
        assert find_literal_secrets(url) == []


@pytest.mark.parametrize("password", PASSWORDS)
def test_a_password_from_the_environment_survives_parsing_whatever_it_holds(tmp_path, monkeypatch, password):
    monkeypatch.setenv("CHURN_TEST_PW", password)
    params = load_params(_params(tmp_path, "postgres://alice:${CHURN_TEST_PW}@127.0.0.1:9/db?password=${CHURN_TEST_PW}"))
    parts = urlsplit(params.warehouse.url)
    assert (parts.username, unquote_plus(parts.password), parts.hostname, parts.port) == (
        "alice", password, "127.0.0.1", 9)
    shown = redact_url(params.warehouse.url)
    assert shown == "postgres://alice:***@127.0.0.1:9/db?password=***"
    with pytest.raises(WarehouseError) as error:
        connect_warehouse(params.warehouse.url, threads=1)
    assert not [piece for piece in _fragments(password) if piece in str(error.value)]


@pytest.mark.parametrize("password", PASSWORDS)
def test_a_raw_password_in_the_environment_url_never_shows(monkeypatch, password):
    url = f"postgres://alice:{password}@127.0.0.1:9/db"  # as a user might set CHURN_WAREHOUSE_URL, not encoded
    with pytest.raises(WarehouseError) as error:
        connect_warehouse(url, threads=1)
    message = str(error.value)
    assert message.startswith("warehouse.url: ") and "\n" not in message
    assert not [piece for piece in _fragments(password) if piece in message], message


def test_redaction_hides_secrets_in_free_text():
    text = ("connection to postgres://bob:x%40y@h/db failed; retry postgres://bob@h/db?token=abc&sslmode=require "
            "(password was hunter2)")
    assert redact(text, ["hunter2"]) == ("connection to postgres://bob:***@h/db failed; retry "
                                         "postgres://bob@h/db?token=***&sslmode=require (password was ***)")


def test_unset_variables_are_named():
    with pytest.raises(KeyError, match="NOPE_A, NOPE_B"):
        fill_references("postgres://${NOPE_A}:${NOPE_B}@h/db", {})


@pytest.mark.postgres
def test_a_password_with_special_characters_connects_to_a_real_server(tmp_path, monkeypatch):
    import os

    server = os.environ.get(POSTGRES_URL_ENV)
    if not server:
        pytest.skip(f"{POSTGRES_URL_ENV} is not set (no PostgreSQL server to test against)")
    parts = urlsplit(server)
    monkeypatch.setenv("CHURN_TEST_PW", "S3cr3t@PW/:?#%+ end")
    params = load_params(_params(tmp_path, f"postgres://{parts.username}:${{CHURN_TEST_PW}}@{parts.hostname}:"
                                           f"{parts.port}{parts.path}"))
    con = connect_warehouse(params.warehouse.url, threads=1)  # the test server trusts loopback: any password works
    try:
        assert con.raw_sql("SELECT 1").fetchone()[0] == 1
    finally:
        con.disconnect()
