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
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .base import DetectorConfig
from .event import SENSITIVITIES, Event
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

    def destinations(self, ev: Event) -> list[tuple[str, str]]:
        """(kind, destination) pairs: ``domain`` or ``party``, de-duplicated, internal ones dropped."""
        internal = [_domain(d) for d in self.config.internal_domains]
        out: list[tuple[str, str]] = []
        domains = [ev.destination_domain, ev.url_domain]
        domains += [a.rpartition("@")[2] for a in ev.email_to if "@" in a]
        for d in domains:
            if d and (d := _domain(d)) and not _is_within(d, internal) and ("domain", d) not in out:
                out.append(("domain", d))
        if ev.recipient_party and ev.recipient_party.strip():
            out.append(("party", ev.recipient_party.strip()))
        return out

    def hits(self, subject: str, ev: Event, state: dict[str, Any], ref: Reference,
             newest: float) -> Iterable[Hit]:
        cfg = self.config
        if ev.kind not in cfg.kinds or ev.outcome == "failure":
            return
        records = ev.records
        if ev.dataset is None and records < max(cfg.min_records, 1):
            return
        dataset = ev.dataset or UNKNOWN_DATASET
        for how, dest in self.destinations(ev):
            parties = ref.parties_for_domain(dest) if how == "domain" else ref.parties_named(dest)
            if any(p.may_receive(ev.dataset) for p in parties):
                continue
            known = sorted(p.party for p in parties)
            sens = ev.sensitivity
            boost = 8 * SENSITIVITIES.index(sens) if sens in SENSITIVITIES else 8
            score = 50 + boost + 6 * math.log10(max(records, 1)) - (5 if known else 0)
            shown = f"{dest} ({', '.join(known)})" if known else dest
            if known:
                why = (f"{'it belongs to' if how == 'domain' else 'it is'} {join_words(known)}, which "
                       f"the sharing register does not approve for {dataset}")
            else:
                why = f"no party in the sharing register has that {'domain' if how == 'domain' else 'name'}"
            size = f"{records:,} records of " if records else ""
            yield Hit(
                key=f"{dataset}|{how}:{dest.lower()}",
                event=ev,
                score=score,
                title=f"Personal data to an unapproved third party: {dataset} to {shown}",
                explanation=(
                    f"This user sent {size}{dataset}"
                    f"{f' ({sens} sensitivity)' if sens else ''} by {ev.channel or ev.kind} to "
                    f"{'the domain' if how == 'domain' else 'the party'} {dest}; {why}. Approved "
                    f"recipients per dataset are kept in the data-sharing register (reference kind "
                    f"sharing); internal domains are set in detectors.third_party_transfer."
                ),
                facts={"dataset": dataset, "destination": dest, "destination_kind": how,
                       "known_parties": known, "records": records, "sensitivity": sens},
            )

