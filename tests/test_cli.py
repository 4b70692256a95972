"""Commands and configuration checks."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from portal import create_app
from portal.accounts.models import Organization, User
from portal.config import ConfigError, ProductionConfig, check_production
from portal.extensions import db


def test_demo_load_is_idempotent(app: Any) -> None:
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo", "load"])
    assert first.exit_code == 0, first.output
    assert "admin@demo.example" in first.output and "demo-pass-1234" in first.output
    counts = db.session.scalar(select(db.func.count()).select_from(User))
    assert runner.invoke(args=["demo", "load"]).exit_code == 0
    assert (
        db.session.scalar(select(db.func.count()).select_from(User)) == counts == 40 + 1 + 5 + 1 + 1
    )
    demo = db.session.scalar(select(Organization).filter_by(slug="demo"))
    assert demo is not None and demo.name == "デモ株式会社"
    member = db.session.scalar(select(User).filter_by(email="member01@demo.example"))
    assert member is not None and member.name == "佐藤 翔太"


def test_demo_load_refused_in_production(app: Any) -> None:
    app.config["ENV_NAME"] = "production"
    result = app.test_cli_runner().invoke(args=["demo", "load"])
    assert result.exit_code != 0 and "refused" in result.output


def test_create_admin(app: Any) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=[
            "create-admin",
            "--org",
            "acme",
            "--org-name",
            "アクメ",
            "--email",
            "Boss@Acme.example",
            "--name",
            "社長",
        ],
        input="a-long-enough-password\na-long-enough-password\n",
    )
    assert result.exit_code == 0, result.output
    user = db.session.scalar(select(User).filter_by(email="boss@acme.example"))
    assert user is not None and user.role.value == "admin"
    again = runner.invoke(
        args=["create-admin", "--org", "acme", "--email", "boss@acme.example", "--name", "x"],
        input="a-long-enough-password\na-long-enough-password\n",
    )
    assert again.exit_code != 0 and "already exists" in again.output
    short = runner.invoke(
        args=["create-admin", "--org", "acme", "--email", "b@acme.example", "--name", "x"],
        input="short\nshort\n",
    )
    assert short.exit_code != 0


def test_oa20_production_refuses_development_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    config = {k: getattr(ProductionConfig(), k) for k in dir(ProductionConfig()) if k.isupper()}
    with pytest.raises(ConfigError) as error:
        check_production(config)
    assert "SECRET_KEY" in str(error.value)
    good = dict(
        config,
        SECRET_KEY="x" * 40,
        PORTAL_ENCRYPTION_KEYS="b" * 44,
        PUBLIC_BASE_URL="https://portal.example",
    )
    check_production(good)
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    with pytest.raises(ConfigError, match="OAUTHLIB_INSECURE_TRANSPORT"):
        check_production(good)
    monkeypatch.delenv("OAUTHLIB_INSECURE_TRANSPORT")
    with pytest.raises(ConfigError, match="SLACK_API_URL"):
        check_production(dict(good, SLACK_API_URL="https://127.0.0.1:5443/slack/api/"))
    with pytest.raises(ConfigError):
        create_app(
            {"ENV_NAME": "production", "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://"}
        )
