"""Identity across sources: every alias a person is known by, resolved to their one person id.

One person signs in to Microsoft 365 with a UPN (``a.morgan@force.example``), to Google Workspace with
an e-mail address or a profile id (``104270239127331552541``), to Windows as ``FORCE\\amorgan``, to the
records system with a collar or staff number, and carries managed phones known by their IMEIs. The
staff directory (reference kind ``staff``) lists them in ``aliases``; :class:`IdentityIndex` maps each
one to the person's ``user_id`` so that every source's events meet on one partition and one state.

Matching is case-insensitive (``str.casefold`` after trimming): UPNs, e-mail addresses and Windows
accounts are case-insensitive where they come from. Windows down-level names are also matched in their
other written form: a listed ``DOMAIN\\sam`` also matches ``sam@domain``, and a listed ``sam@domain``
whose domain has no dot (a NetBIOS name, not a DNS domain) also matches ``domain\\sam``. Nothing else is
guessed: a UPN is not assumed to share its user part with a Windows account, so a bare ``sam`` or a
``DOMAIN\\sam`` from another domain must be listed.

Precedence, so that one bad directory line cannot take over another person's events: a person id
always resolves to itself; then listed aliases; then the derived down-level forms. An alias listed for
two different people is *ambiguous*: it resolves to nobody (its events are counted as unknown, as for
any id the directory does not know) and the number of such aliases is reported
(:attr:`IdentityIndex.ambiguous`); a derived form two people would share is simply not derived.

Pure: built from the directory snapshot, never from files.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol


class _Person(Protocol):
    user_id: str
    aliases: tuple[str, ...]


def normalise(alias: str) -> str:
    """The form aliases are compared in: trimmed and case-folded."""
    return alias.strip().casefold()


def other_forms(alias: str) -> tuple[str, ...]:
    """The other written forms of a normalised Windows account name: ``dom\\sam`` <-> ``sam@dom`` (the
    ``@`` form only for a domain without a dot: ``sam@force.example`` is a UPN, not a down-level name)."""
    if "\\" in alias:
        domain, _, sam = alias.partition("\\")
        if domain and sam and "\\" not in sam and "@" not in sam + domain and "." not in domain:
            return (f"{sam}@{domain}",)
        return ()
    if alias.count("@") == 1:
        sam, _, domain = alias.partition("@")
        if sam and domain and "." not in domain and "\\" not in sam + domain:
            return (f"{domain}\\{sam}",)
    return ()


@dataclass(frozen=True)
class IdentityIndex:
    """Normalised alias -> person id, for one directory snapshot."""

    by_alias: Mapping[str, str] = field(default_factory=dict)
    ambiguous: int = 0
    """Aliases listed for more than one person (they resolve to nobody)."""

    def __len__(self) -> int:
        return len(self.by_alias)

    def resolve(self, user_id: str) -> str | None:
        """The person id ``user_id`` stands for, or None when the directory does not know it."""
        return self.by_alias.get(normalise(user_id))


def build(people: Iterable[_Person]) -> IdentityIndex:
    """The index of a staff directory's people (see the module's precedence rules)."""
    people = list(people)
    by_alias: dict[str, str] = {}
    for person in people:  # 1. person ids (a case-variant of one resolves to it)
        by_alias.setdefault(normalise(person.user_id), person.user_id)
    ids = set(by_alias)
    listed: dict[str, str] = {}
    clashing: set[str] = set()
    for person in people:  # 2. listed aliases
        for alias in person.aliases:
            key = normalise(alias)
            if not key or key in ids:
                continue
            owner = listed.setdefault(key, person.user_id)
            if owner != person.user_id:
                clashing.add(key)
    for key in clashing:
        del listed[key]
    derived: dict[str, str] = {}
    shared: set[str] = set()
    for key, owner in listed.items():  # 3. the other forms of down-level names
        for form in other_forms(key):
            if form in ids or form in listed or form in clashing:
                continue
            if derived.setdefault(form, owner) != owner:
                shared.add(form)
    for form in shared:
        del derived[form]
    by_alias.update(listed)
    by_alias.update(derived)
    return IdentityIndex(by_alias, len(clashing))

