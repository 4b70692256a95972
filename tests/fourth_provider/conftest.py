"""The fourth provider is registered for each test here, before the app is built, and taken
away afterwards: nothing outside this folder knows it exists."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from portal.integrations.registry import providers

from . import FourthProvider, service
from .service import FakeService, Person

#: The fake service's directory: three members of デモ株式会社, a guest and a leaver.
PEOPLE = (
    Person("F001", "メンバー 一", "member01@demo.example"),
    Person("F002", "メンバー 二", "member02@demo.example"),
    Person("F003", "ゲスト 三", "guest03@demo.example", guest=True),
    Person("F004", "メンバー 四", "member04@demo.example"),
    Person("F005", "退職 五", "left05@demo.example", active=False),
)


@pytest.fixture(autouse=True)
def fourth() -> Iterator[FourthProvider]:
    """Registered (and the fake service fresh) before ``app``: autouse fixtures come first."""
    fresh = FakeService(people=list(PEOPLE))
    for name, value in vars(fresh).items():
        setattr(service.SERVICE, name, value)
    providers.register(FourthProvider)
    registered = providers.get(FourthProvider.key)
    assert isinstance(registered, FourthProvider)
    yield registered
    providers.unregister(FourthProvider.key)


@pytest.fixture
def admin_client(client: Any, tenants: dict[str, Any]) -> Any:
    """An admin of デモ株式会社."""
    client.login(tenants["admin"])
    return client


@pytest.fixture
def members(make_user: Any, tenants: dict[str, Any]) -> dict[str, Any]:
    own = tenants["own"]
    return {
        email.split("@")[0]: make_user(own, email=email)
        for email in (
            "member01@demo.example",
            "member02@demo.example",
            "guest03@demo.example",
            "member06@demo.example",  # not invited to the workspace
        )
    }
