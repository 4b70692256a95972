"""Migrations: one head, models and migrations agree (``flask db check``), downgrade works."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade

from portal.extensions import db

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def test_single_head() -> None:
    """Two heads mean two branches of schema history; deployments would pick one at random."""
    config = Config(str(MIGRATIONS / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS))
    assert len(ScriptDirectory.from_config(config).get_heads()) == 1


def test_models_match_migrations(app: Any) -> None:
    result = app.test_cli_runner().invoke(args=["db", "check"])
    assert result.exit_code == 0, result.output


def test_downgrade_then_upgrade(app: Any) -> None:
    downgrade(revision="base")
    assert db.inspect(db.engine).get_table_names() in ([], ["alembic_version"])
    upgrade()
    assert "audit_events" in db.inspect(db.engine).get_table_names()
