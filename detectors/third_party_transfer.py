"""third_party_transfer: personal data sent or shared to a party the sharing register does not
approve for that dataset (the 30,000 firearm-certificate holders' addresses sent to a mailing agency).

An event carries personal data when it names a dataset (``custodes.dataset.name``) or reports
records (``custodes.record.count`` / ``ids``). Its destinations are ``destination.domain``,
``url.domain``, the domains of ``email.to.address`` and the named party ``custodes.recipient.party``.
A destination inside the organisation (``internal_domains``, sub-domains included) is fine; any
other must belong to a party in the sharing register (reference kind ``sharing``) whose datasets
include the event's dataset (or ``*``). An event with records but no dataset name is treated as
dataset ``unknown``, which only a ``*`` party may receive.

Documents and mailboxes (issue 16), whether or not the event names personal data:

* **public link** — a ``share`` with ``custodes.share.visibility`` ``anyone`` (public, anyone with the
  link, an anonymous link): one alert per person per ``suppress_s``, further links folded into it
  (``public_share_score``, plus 8 per sensitivity level when the document's sensitivity is given);
* **external share** — a ``share`` with visibility ``external``, or whose recipients
  (``email.to.address``, ``destination.domain``, ``custodes.recipient.party``) are outside the
  organisation, of a document that names no dataset and reports no records (those are judged as
  personal data above): one alert per destination domain (``external_share_score``). A partner in the
  sharing register may receive such documents; an external share whose recipients the source does not
  name is one alert under ``(unnamed)``;
* **mail forwarding** — a ``mail_forward`` (an auto-forwarding, inbox or redirect rule created or
  changed) whose targets (``email.to.address``) are outside the organisation: one alert per destination
  domain (``forward_score``). Forwarding every message is more than any dataset approval, so only a
  party the register approves for every dataset (``*``) may be the target.

The organisation's domains are ``internal_domains``; the runtime adds the site-wide ``org_domains``
setting to them when it is set (the readers mark shares external with the same list).

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
    kinds: tuple[str, ...] = ("export", "share", "message", "web_upload", "mail_forward")
    internal_domains: tuple[str, ...] = ("police.uk", "pnn.police.uk")
    """Domains (and their sub-domains) of the organisation itself: never a third party."""
    min_records: int = 1
    """Events reporting fewer records than this, and naming no dataset, are ignored."""
    public_share_score: float = 65.0
    """A share with anyone (public, anyone with the link, anonymous link)."""
    external_share_score: float = 45.0
    """A document shared with named people outside the organisation."""
    forward_score: float = 75.0
    """A mailbox rule forwarding or redirecting mail outside the organisation."""
    suppress_s: int = 86400
    grace_s: int = 3600


def _domain(value: str) -> str:
    return value.strip().lower().strip(".")


def _is_within(domain: str, parents: Iterable[str]) -> bool:
    return any(domain == p or domain.endswith("." + p) for p in parents)


class ThirdPartyTransfer(RuleDetector):
    id = "third_party_transfer"
    version = 2
    """2: also public links, documents shared outside and mail forwarded outside (no dataset needed)."""
    summary = ("Personal data sent to a party or domain the sharing register does not approve for that dataset; "
               "documents shared with anyone or outside the organisation; mail forwarded outside it.")
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
            if not (ev.destination_domain or ev.url_domain or ev.email_to or ev.recipient_party
                    or ev.share_visibility):
                continue
            for hit in self.hits(subject, ev, state, ref, newest):
                if found is None:
                    found = []
                found.append((hit, newest))
        return newest, found

    def hits(self, subject: str, ev: Event, state: dict[str, Any], ref: Reference,
             newest: float) -> Iterable[Hit]:
        cfg = self.config
        kind = ev.kind
        if kind not in self._kinds or ev.outcome == "failure":
            return ()
        if kind == "mail_forward":
            return self._forward_hits(ev, ref)
        if kind == "share" and ev.share_visibility == "anyone":
            return self._public_hits(ev)
        if not (ev.destination_domain or ev.url_domain or ev.email_to or ev.recipient_party
                or ev.share_visibility == "external"):
            return ()  # no destination
        records = ev.records
        if ev.dataset is None and records < max(cfg.min_records, 1):
            if kind == "share" and ev.share_visibility not in ("domain", "internal"):
                return self._external_share_hits(ev, ref)
            return ()
        unapproved = self._unapproved(ref, ev)
        if not unapproved:
            if kind == "share" and ev.share_visibility == "external" and not self.destinations(ev):
                return self._external_share_hits(ev, ref)  # personal data to recipients it does not name
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

    # -- documents and mailboxes --------------------------------------------------------------------

    def _boost(self, ev: Event) -> float:
        sens = ev.sensitivity
        return 8.0 * SENSITIVITIES.index(sens) if sens in SENSITIVITIES else 0.0

    def _public_hits(self, ev: Event) -> list[Hit]:
        return [Hit(key="public", event=ev, score=self.config.public_share_score + self._boost(ev),
                    title="", explanation="",
                    facts={"rule": "public_share", "dataset": ev.dataset, "sensitivity": ev.sensitivity,
                           "records": ev.records, "channel": ev.channel or ev.kind})]

    def _external_share_hits(self, ev: Event, ref: Reference) -> list[Hit]:
        """A document (no dataset, no records) shared outside: one hit per destination no partner has."""
        out = []
        score = self.config.external_share_score + self._boost(ev)
        destinations = self.destinations(ev)
        for how, dest in destinations:
            parties = ref.parties_for_domain(dest) if how == "domain" else ref.parties_named(dest)
            if parties:
                continue  # a partner in the sharing register
            where, label = _destination(how, dest, "external")
            out.append(Hit(key=f"external|{dest.lower()}", event=ev, score=score, title="", explanation="",
                           facts={"rule": "external_share", **where, "destination_kind": how,
                                  "sensitivity": ev.sensitivity, "dataset": ev.dataset, "records": ev.records,
                                  "channel": ev.channel or ev.kind}, label=label))
        if not destinations and ev.share_visibility == "external":
            out.append(Hit(key="external|(unnamed)", event=ev, score=score, title="", explanation="",
                           facts={"rule": "external_share", "destination": None, "destination_kind": None,
                                  "sensitivity": ev.sensitivity, "dataset": ev.dataset, "records": ev.records,
                                  "channel": ev.channel or ev.kind}))
        return out

    def _forward_hits(self, ev: Event, ref: Reference) -> list[Hit]:
        """A mailbox rule whose targets are outside: one hit per domain not approved for everything."""
        out = []
        score = self.config.forward_score + self._boost(ev)
        for how, dest in self.destinations(ev):
            parties = ref.parties_for_domain(dest) if how == "domain" else ref.parties_named(dest)
            if any(p.may_receive(None) for p in parties):
                continue  # a party approved for every dataset
            where, label = _destination(how, dest, "forward")
            out.append(Hit(key=f"forward|{dest.lower()}", event=ev, score=score, title="", explanation="",
                           facts={"rule": "mail_forward", **where, "destination_kind": how,
                                  "known_parties": sorted(p.party for p in parties), "action": ev.action},
                           label=label))
        return out

    def _describe_rule(self, rule: str, facts: dict[str, Any], ev: Event) -> tuple[str, str]:
        sens = facts.get("sensitivity")
        if facts.get("destination_kind") == "party":  # masked: the text refers to it by placeholder only
            facts = {**facts, "destination": placeholder("recipient_party")}
        of = f" ({sens} sensitivity)" if sens else ""
        if rule == "public_share":
            what = f"{facts['dataset']}" if facts.get("dataset") else "a document"
            return (
                f"Shared with anyone: {what} made public or shared by an anyone-with-the-link link",
                f"This user shared {what}{of} so that anyone can open it (public, anyone with the link or an "
                f"anonymous link); nobody outside the organisation is named, so no sharing register can "
                f"approve it. Public links are reported in detectors.third_party_transfer (public_share_score).",
            )
        dest = facts.get("destination")
        if rule == "external_share":
            to = f"the {'domain' if facts['destination_kind'] == 'domain' else 'party'} {dest}" if dest else \
                "people outside the organisation (the source does not name them)"
            what = "a document"
            if facts.get("dataset") or facts.get("records"):
                size = f"{facts['records']:,} records of " if facts.get("records") else ""
                what = f"{size}{facts.get('dataset') or UNKNOWN_DATASET}"
            return (
                f"Document shared outside the organisation: {dest or 'external recipients'}",
                f"This user shared {what}{of} with {to}, which is neither one of the organisation's "
                f"domains nor a partner in the data-sharing register (reference kind sharing). Internal "
                f"domains are set by org_domains / detectors.third_party_transfer.internal_domains.",
            )
        known = facts.get("known_parties") or []
        why = (f"it belongs to {join_words(known)}, which the register does not approve for every dataset"
               if known else "no party in the sharing register has that domain")
        return (
            f"Mail forwarded outside the organisation: {dest}",
            f"This user created or changed a mailbox rule ({facts.get('action') or 'forwarding'}) that "
            f"forwards or redirects mail to {dest}, outside the organisation's domains; {why}. Every "
            f"message the mailbox receives from now on may leave the organisation.",
        )

    def describe(self, rec: dict[str, Any], hit: Hit) -> tuple[str, str]:
        """The alert's text from its best hit (built only for alerts, not for every hit)."""
        facts, ev = hit.facts, hit.event
        rule = facts.get("rule")
        if rule is not None:
            return self._describe_rule(rule, facts, ev)
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


def _destination(how: str | None, dest: str, rule: str) -> tuple[dict[str, Any], str | None]:
    """The facts naming a share's or forward's destination, and the fold label: a domain as it is, a
    named party masked (the review app shows it only after a content reveal)."""
    if how == "party":
        return masked(recipient_party=dest), f"{rule}|party:{placeholder('recipient_party')}"
    return {"destination": dest}, None
