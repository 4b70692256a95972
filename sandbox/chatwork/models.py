"""Chatwork accounts, contacts, rooms, OAuth clients and codes held by the sandbox."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sandbox.ids import number

# Scopes offered on the registration page, with the Japanese wording of Chatwork's screen.
SCOPES: dict[str, str] = {
    "offline_access": "永続的なAPIアクセスの許可",
    "users.all:read": "自分のアカウントに紐づく情報の取得",
    "users.profile.me:read": "自分のプロフィール情報の取得",
    "users.status.me:read": "自分の未読数、未読To数、未完了タスク数の取得",
    "users.tasks.me:read": "自分のタスク一覧の取得",
    "rooms.all:read_write": (
        "チャットルームの操作と、メッセージ・タスク・ファイル・概要・メンバー情報の操作"
    ),
    "rooms.all:read": "自分が参加しているチャットルームの情報の取得",
    "rooms.all:write": "チャットルームの作成・操作",
    "rooms.messages:read": "自分が参加しているチャットルームのメッセージの取得",
    "rooms.messages:write": "自分が参加しているチャットルームへのメッセージ投稿",
    "contacts.all:read_write": "自分のコンタクト、及びコンタクト承認依頼情報の取得と操作",
    "contacts.all:read": "自分のコンタクト、及びコンタクト承認依頼情報の取得",
    "contacts.all:write": "自分へのコンタクト承認依頼の操作",
}


@dataclass
class ChatworkAccount:
    """A Chatwork user. `can_login` marks accounts offered on the consent page."""

    account_id: int
    name: str
    chatwork_id: str
    organization_id: int
    organization_name: str
    department: str
    mail: str
    my_room_id: int
    title: str = ""
    can_login: bool = False
    label: str = ""  # why this account exists, shown on the consent page and inspector
    active: bool = True

    @property
    def avatar_image_url(self) -> str:
        """Where Chatwork would serve the avatar."""
        return f"https://appdata.chatwork.com/avatar/ico_default_{self.account_id % 10}.png"

    def contact(self, room_id: int) -> dict[str, Any]:
        """Entry of GET /contacts (no e-mail: Chatwork never exposes it)."""
        return {
            "account_id": self.account_id,
            "room_id": room_id,
            "name": self.name,
            "chatwork_id": self.chatwork_id,
            "organization_id": self.organization_id,
            "organization_name": self.organization_name,
            "department": self.department,
            "avatar_image_url": self.avatar_image_url,
        }

    def me(self) -> dict[str, Any]:
        """Body of GET /me."""
        return {
            "account_id": self.account_id,
            "room_id": self.my_room_id,
            "name": self.name,
            "chatwork_id": self.chatwork_id,
            "organization_id": self.organization_id,
            "organization_name": self.organization_name,
            "department": self.department,
            "title": self.title,
            "url": "",
            "introduction": "",
            "mail": self.mail,
            "tel_organization": "",
            "tel_extension": "",
            "tel_mobile": "",
            "skype": "",
            "facebook": "",
            "twitter": "",
            "avatar_image_url": self.avatar_image_url,
            "login_mail": self.mail,
        }


@dataclass
class ChatworkMessage:
    """A posted message."""

    message_id: str
    room_id: int
    account_id: int
    body: str
    send_time: int

    def public(self) -> dict[str, Any]:
        """JSON for the control API."""
        return {
            "message_id": self.message_id,
            "room_id": self.room_id,
            "account_id": self.account_id,
            "body": self.body,
            "send_time": self.send_time,
        }


@dataclass
class ChatworkRoom:
    """A room: "my" chat or a direct chat between two contacts."""

    room_id: int
    members: set[int]
    kind: str
    messages: list[ChatworkMessage] = field(default_factory=list)


@dataclass
class ContactRequest:
    """A contact request `from_id` sent and `to_id` has not accepted yet."""

    request_id: int
    from_id: int
    to_id: int
    message: str = "よろしくお願いします。"


@dataclass
class OAuthClient:
    """A client registered on the registration page (or via the control API)."""

    client_id: str
    client_secret: str | None
    name: str
    client_type: str  # confidential | public
    redirect_uris: list[str]
    scopes: list[str]
    created_at: float


@dataclass
class ChatworkCode:
    """An authorization code (valid one minute, single use)."""

    code: str
    client_id: str
    account_id: int
    redirect_uri: str
    scopes: list[str]
    code_challenge: str | None
    expires_at: float
    used: bool = False


@dataclass
class ChatworkData:
    """All Chatwork data."""

    accounts: dict[int, ChatworkAccount] = field(default_factory=dict)
    rooms: dict[int, ChatworkRoom] = field(default_factory=dict)
    contacts: dict[int, set[int]] = field(default_factory=dict)
    requests: dict[int, ContactRequest] = field(default_factory=dict)
    clients: dict[str, OAuthClient] = field(default_factory=dict)
    codes: dict[str, ChatworkCode] = field(default_factory=dict)
    pairs: dict[frozenset[int], int] = field(default_factory=dict)  # contacts -> direct room id

    def direct_room(self, a: int, b: int) -> ChatworkRoom | None:
        """The direct-chat room of two contacts."""
        room_id = self.pairs.get(frozenset((a, b)))
        return self.rooms.get(room_id) if room_id is not None else None

    def add_contact(self, a: int, b: int, room_id: int) -> ChatworkRoom:
        """Make two accounts contacts, with their direct-chat room."""
        self.contacts.setdefault(a, set()).add(b)
        self.contacts.setdefault(b, set()).add(a)
        room = self.direct_room(a, b) or ChatworkRoom(room_id, {a, b}, "direct")
        self.rooms[room.room_id] = room
        self.pairs[frozenset((a, b))] = room.room_id
        return room

    def accept_request(self, request_id: int) -> ChatworkRoom:
        """Accept a pending contact request: the two become contacts with a direct chat."""
        pending = self.requests.pop(request_id)
        room_id = number("cw-room", pending.from_id, pending.to_id)
        return self.add_contact(pending.from_id, pending.to_id, room_id)

    def contacts_of(self, account_id: int) -> list[tuple[ChatworkAccount, int]]:
        """(contact, direct room id) pairs of an account, active contacts only."""
        result = []
        for other_id in sorted(self.contacts.get(account_id, ())):
            other = self.accounts[other_id]
            room = self.direct_room(account_id, other_id)
            if other.active and room is not None:
                result.append((other, room.room_id))
        return result
