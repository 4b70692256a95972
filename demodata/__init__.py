"""Deterministic people shared by the portal's demo data and the provider sandbox.

The portal's ``flask demo load`` creates members from :func:`members`; the sandbox builds its
Slack workspace, Chatwork contacts and Microsoft tenant from the same list, so the demo
organization and the sandbox directories match without either importing the other.
"""

from __future__ import annotations

from dataclasses import dataclass

FAMILY = (
    ("佐藤", "さとう", "Sato"),
    ("鈴木", "すずき", "Suzuki"),
    ("高橋", "たかはし", "Takahashi"),
    ("田中", "たなか", "Tanaka"),
    ("伊藤", "いとう", "Ito"),
    ("渡辺", "わたなべ", "Watanabe"),
    ("山本", "やまもと", "Yamamoto"),
    ("中村", "なかむら", "Nakamura"),
    ("小林", "こばやし", "Kobayashi"),
    ("加藤", "かとう", "Kato"),
    ("吉田", "よしだ", "Yoshida"),
    ("山田", "やまだ", "Yamada"),
    ("佐々木", "ささき", "Sasaki"),
    ("山口", "やまぐち", "Yamaguchi"),
    ("松本", "まつもと", "Matsumoto"),
    ("井上", "いのうえ", "Inoue"),
    ("木村", "きむら", "Kimura"),
    ("林", "はやし", "Hayashi"),
    ("斎藤", "さいとう", "Saito"),
    ("清水", "しみず", "Shimizu"),
)
GIVEN = (
    ("翔太", "しょうた", "Shota"),
    ("陽菜", "ひな", "Hina"),
    ("大輝", "だいき", "Daiki"),
    ("結衣", "ゆい", "Yui"),
    ("蓮", "れん", "Ren"),
    ("美咲", "みさき", "Misaki"),
    ("悠斗", "ゆうと", "Yuto"),
    ("さくら", "さくら", "Sakura"),
    ("健太", "けんた", "Kenta"),
    ("彩花", "あやか", "Ayaka"),
    ("拓海", "たくみ", "Takumi"),
    ("葵", "あおい", "Aoi"),
    ("颯太", "そうた", "Sota"),
    ("凛", "りん", "Rin"),
    ("直樹", "なおき", "Naoki"),
    ("真央", "まお", "Mao"),
    ("和也", "かずや", "Kazuya"),
    ("七海", "ななみ", "Nanami"),
    ("亮", "りょう", "Ryo"),
    ("優奈", "ゆうな", "Yuna"),
)


@dataclass(frozen=True)
class Person:
    """One generated person: the n-th member of an organization."""

    number: int
    email: str
    family: str
    given: str
    family_kana: str
    given_kana: str
    family_roman: str
    given_roman: str

    @property
    def name(self) -> str:
        """Japanese display name, family name first, separated by a space."""
        return f"{self.family} {self.given}"

    @property
    def roman_name(self) -> str:
        """Latin-script name in Western order ("Shota Sato")."""
        return f"{self.given_roman} {self.family_roman}"


def person(number: int, domain: str = "demo.example", width: int = 2) -> Person:
    """Return member ``number`` (1-based) of an organization at ``domain``.

    Names cycle through 400 distinct family/given pairs, so small organizations never repeat a
    name and large benchmark organizations repeat them the way real companies do.
    """
    index = number - 1
    family = FAMILY[index % len(FAMILY)]
    given = GIVEN[(index + 7 * (index // len(FAMILY))) % len(GIVEN)]
    return Person(
        number=number,
        email=f"member{number:0{width}d}@{domain}",
        family=family[0],
        given=given[0],
        family_kana=family[1],
        given_kana=given[1],
        family_roman=family[2],
        given_roman=given[2],
    )


def members(count: int, domain: str = "demo.example", width: int | None = None) -> list[Person]:
    """Return ``count`` members; e-mails are zero-padded to at least two digits."""
    width = width or max(2, len(str(count)))
    return [person(n, domain, width) for n in range(1, count + 1)]


DEMO_MEMBER_COUNT = 40
SAMPLE_MEMBER_COUNT = 5
