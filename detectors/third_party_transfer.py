"""third_party_transfer: personal data sent or shared to a party the sharing register does not
approve for that dataset (the 30,000 firearm-certificate holders' addresses sent to a mailing agency).

An event carries personal data when it names a dataset (``custodes.dataset.name``) or reports
records (``custodes.record.count`` / ``ids``). Its destinations are ``destination.domain``,
``url.domain``, the domains of ``email.to.address`` and the named party ``custodes.recipient.party``.
A destination inside the organisation (``internal_domains``, sub-domains included) is fine; any
other must belong to a party in the sharing register (reference kind ``sharing``) whose datasets
include the event's dataset (or ``*``). An event with records but no dataset name is treated as
dataset ``unknown``, which only a ``*`` party may receive.

State: the open alert windows only (:mod:`detectors.suppression`): at most 64, one per (dataset,
destination), each expiring ``suppress_s + grace_s`` after it opened.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from .base import DetectorConfig, Needs
from .event import SENSITIVITIES, Event
from .masking import masked, placeholder
from .reference import Reference
from .suppression import Hit, RuleDetector, join_words

UNKNOWN_DATASET = "unknown"


@dataclass(frozen=True)
class ThirdPartyTransferConfig(DetectorConfig):
    kinds: tuple[str, ...] = ("export", "share", "message", "web_upload")
    internal_domains: tuple[str, ...] = ("police.uk", "pnn.police.uk")
    """Domains (and their sub-domains) of the organisation itself: never a third party."""
    min_records: int = 1
    """Events reporting fewer records than this, and naming no dataset, are ignored."""
    suppress_s: int = 86400
    grace_s: int = 3600


def _domain(value: str) -> str:
    return value.strip().lower().strip(".")


def _is_within(domain: str, parents: Iterable[str]) -> bool:
    return any(domain == p or domain.endswith("." + p) for p in parents)


class ThirdPartyTransfer(RuleDetector):
    id = "third_party_transfer"
    version = 1
    summary = "Personal data sent to a party or domain the sharing register does not approve for that dataset."
    Config = ThirdPartyTransferConfig
    config: ThirdPartyTransferConfig

    def needs(self) -> Needs:
        return Needs(kinds=frozenset(self.config.kinds))

    @cached_property
    def _internal(self) -> tuple[str, ...]:
        return tuple(_domain(d) for d in self.config.internal_domains)

    @cached_property
    def _kinds(self) -> frozenset[str]:
        return frozenset(self.config.kinds)

    @cached_property
    def _cache(self) -> dict[Any, Any]:
        """None -> the reference snapshot it holds; (destinations, dataset) -> :meth:`_unapproved`."""
        return {}

    def destinations(self, ev: Event) -> list[tuple[str, str]]:
        """(kind, destination) pairs: ``domain`` or ``party``, de-duplicated, internal ones dropped."""
        internal = self._internal
        out: list[tuple[str, str]] = []
        domains = [ev.destination_domain, ev.url_domain]
        if ev.email_to:
            domains += [a.rpartition("@")[2] for a in ev.email_to if "@" in a]
        for d in domains:
            if d and (d := _domain(d)) and not _is_within(d, internal) and ("domain", d) not in out:
                out.append(("domain", d))
        if ev.recipient_party and ev.recipient_party.strip():
            out.append(("party", ev.recipient_party.strip()))
        return out

    def _unapproved(self, ref: Reference, ev: Event) -> list[tuple[str, str, str, tuple[str, ...]]]:
        """The event's destinations that may not receive its dataset: (alert key, ``domain`` or
        ``party``, destination, the parties it belongs to, sorted). Cached per reference snapshot and
        (destinations, dataset)."""
        cache = self._cache
        if cache.get(None) is not ref:
            cache.clear()
            cache[None] = ref
        key: Any = (ev.destination_domain, ev.url_domain, ev.email_to, ev.recipient_party, ev.dataset)
        try:
            out = cache.get(key)
        except TypeError:  # not hashable (a list where a tuple was expected): no caching
            key = out = None
        if out is None:
            out = []
            dataset = ev.dataset or UNKNOWN_DATASET
            for how, dest in self.destinations(ev):
                parties = ref.parties_for_domain(dest) if how == "domain" else ref.parties_named(dest)
                if not any(p.may_receive(ev.dataset) for p in parties):
                    out.append((f"{dataset}|{how}:{dest.lower()}", how, dest, tuple(sorted(p.party for p in parties))))
            if key is not None and len(cache) < 4096:
                cache[key] = out
        return out

    def scan(self, subject: str, events: Sequence[Event], marks: Sequence[float] | None,
             state: dict[str, Any], ref: Reference, newest: float | None
             ) -> tuple[float | None, list[tuple[Hit, float]] | None]:
        """:meth:`hits` over the events, skipping at once an event with no destination."""
        found: list[tuple[Hit, float]] | None = None
        for i, ev in enumerate(events):
            at = ev.ts if marks is None else marks[i]
            if newest is None or at > newest:
                newest = at
            if not (ev.destination_domain or ev.url_domain or ev.email_to or ev.recipient_party):
                continue
            for hit in self.hits(subject, ev, state, ref, newest):
                if found is None:
                    found = []
                found.append((hit, newest))
        return newest, found

    def hits(self, subject: str, ev: Event, state: dict[str, Any], ref: Reference,
             newest: float) -> Iterable[Hit]:
        cfg = self.config
        if ev.kind not in self._kinds or ev.outcome == "failure":
            return ()
        if not (ev.destination_domain or ev.url_domain or ev.email_to or ev.recipient_party):
            return ()  # no destination
        records = ev.records
        if ev.dataset is None and records < max(cfg.min_records, 1):
            return ()
        unapproved = self._unapproved(ref, ev)
        if not unapproved:
            return ()
        dataset = ev.dataset or UNKNOWN_DATASET
        sens = ev.sensitivity
        boost = 8 * SENSITIVITIES.index(sens) if sens in SENSITIVITIES else 8
        out = []
        for key, how, dest, known in unapproved:
            score = 50 + boost + 6 * math.log10(max(records, 1)) - (5 if known else 0)
            facts: dict[str, Any] = {"dataset": dataset, "destination_kind": how, "records": records,
                                     "sensitivity": sens}
            label = None
            if how == "party":  # a named recipient is masked (so are the register parties of that name)
                facts.update(masked(recipient_party=dest, known_parties=list(known) or None))
                label = f"{dataset}|party:{placeholder('recipient_party')}"
            else:
                facts.update(destination=dest, known_parties=list(known))
            out.append(Hit(key=key, event=ev, score=score, title="", explanation="", facts=facts, label=label))
        return out

    def describe(self, rec: dict[str, Any], hit: Hit) -> tuple[str, str]:
        """The alert's text from its best hit (built only for alerts, not for every hit)."""
        facts, ev = hit.facts, hit.event
        dataset, how = facts["dataset"], facts["destination_kind"]
        records, sens = facts["records"], facts["sensitivity"]
        if how == "party":  # masked: the text refers to it by placeholder only
            dest = placeholder("recipient_party")
            known = [dest] if facts.get("masked", {}).get("known_parties") else []
            shown = dest
        else:
            dest, known = facts["destination"], facts["known_parties"]
            shown = f"{dest} ({', '.join(known)})" if known else dest
        if known:
            why = (f"{'it belongs to' if how == 'domain' else 'it is'} {join_words(known)}, which "
                   f"the sharing register does not approve for {dataset}")
        else:
            why = f"no party in the sharing register has that {'domain' if how == 'domain' else 'name'}"
        size = f"{records:,} records of " if records else ""
        return (
            f"Personal data to an unapproved third party: {dataset} to {shown}",
            f"This user sent {size}{dataset}"
            f"{f' ({sens} sensitivity)' if sens else ''} by {ev.channel or ev.kind} to "
            f"{'the domain' if how == 'domain' else 'the party'} {dest}; {why}. Approved "
            f"recipients per dataset are kept in the data-sharing register (reference kind "
            f"sharing); internal domains are set in detectors.third_party_transfer.",
        )
