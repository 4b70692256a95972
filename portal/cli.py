"""Commands: ``flask --app wsgi create-admin | demo load | rotate-keys | api-keys | mfa-reset``."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select

from .extensions import db

demo_cli = AppGroup("demo", help="Demo data for development.")


@demo_cli.command("load")
def demo_load() -> None:
    """Load the demo organizations and users (idempotent; refused in production)."""
    if current_app.config.get("ENV_NAME") == "production":
        raise click.ClickException("demo data is refused under the production configuration")
    from . import demo

    logins = demo.load()
    click.echo(f"Demo logins (password: {demo._password()}):")
    for email, role in logins:
        click.echo(f"  {email:<32} {role}")


@click.command("create-admin")
@click.option("--org", "org_slug", required=True, help="Organization slug (created if missing).")
@click.option("--org-name", default=None, help="Display name when the organization is new.")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.password_option()
def create_admin(org_slug: str, org_name: str | None, email: str, name: str, password: str) -> None:
    """Create an organization admin (and the organization, if it does not exist)."""
    from .accounts import services
    from .accounts.models import Organization
    from .accounts.permissions import Role

    if len(password) < 12:
        raise click.ClickException("the password must have at least 12 characters")
    organization = db.session.scalar(select(Organization).filter_by(slug=org_slug.lower()))
    if organization is None:
        organization = services.create_organization(org_slug, org_name or org_slug)
    try:
        services.create_user(
            email=email, name=name, role=Role.ADMIN, organization=organization, password=password
        )
    except services.UserError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(f"Created admin {email.lower()} in {organization.slug}.")


@click.command("rotate-keys")
@click.option("--batch-size", default=500, show_default=True)
def rotate_keys(batch_size: int) -> None:
    """Re-encrypt every stored secret with the newest key. Safe to kill and run again."""
    from . import rotation

    counts = rotation.rotate_all(batch_size=batch_size, progress=click.echo)
    click.echo(f"Rotated {counts.rotated} values; {counts.current} already current.")
    if counts.unreadable:
        raise click.ClickException(
            f"{counts.unreadable} values could not be decrypted with any configured key; "
            "their integrations now show 'reconnect required'"
        )


api_keys_cli = AppGroup("api-keys", help="API keys of the notifications API.")


@api_keys_cli.command("create")
@click.argument("org_slug")
@click.option("--name", default="CLI", show_default=True, help="A name to recognise the key by.")
def api_keys_create(org_slug: str, name: str) -> None:
    """Create an API key for ORG_SLUG and print it once."""
    from .accounts.models import Organization
    from .notifications import api_keys

    organization = db.session.scalar(select(Organization).filter_by(slug=org_slug.lower()))
    if organization is None:
        raise click.ClickException(f"no organization with slug {org_slug!r}")
    _row, key = api_keys.create(organization, name, actor=None)
    click.echo(key)
    click.echo("Store it now: it cannot be shown again.", err=True)


@click.command("mfa-reset")
@click.argument("email")
def mfa_reset(email: str) -> None:
    """Turn off EMAIL's two-step verification (a lost phone), after checking who asks.

    The person then signs in with the password alone and, where their role requires it, is
    asked to set it up again before anything else. Audited.
    """
    from .accounts.models import User
    from .audit import service as audit
    from .auth import mfa

    user = db.session.scalar(select(User).filter_by(email=email.strip().lower()))
    if user is None:
        raise click.ClickException(f"no user with e-mail {email!r}")
    if not mfa.is_enabled(user) and user.mfa_secret is None:
        click.echo(f"{user.email} has no two-step verification; nothing to do.")
        return
    mfa.disable(user)
    audit.record(
        "user.mfa_disabled", organization=user.organization, data={"by": "mfa-reset command"}
    )
    db.session.commit()
    click.echo(f"Two-step verification of {user.email} is off; they must set it up again.")


def init_app(app: Flask) -> None:
    app.cli.add_command(demo_cli)
    app.cli.add_command(create_admin)
    app.cli.add_command(rotate_keys)
    app.cli.add_command(api_keys_cli)
    app.cli.add_command(mfa_reset)
