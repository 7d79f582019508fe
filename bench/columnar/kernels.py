"""Vectorised kernels for bulk_export (records path) and unusual_volume over columnar micro-batches.

Each kernel keeps its state between micro-batches as arrays (never event lists) and gives the same
alerts as the product detector on the inputs it covers; anything outside that raises
:class:`NotCovered` rather than guessing (see README.md: late events, resets, the document path).
Alerts are returned as :class:`Found` rows keyed by the product's alert id (same digest).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from detectors.alert import alert_id
from detectors.bulk_export import BulkExportConfig
from detectors.event import SENSITIVITIES
from detectors.peers import BUCKETS, HOUR, MAX_GAP_HOURS, bucket_of
from detectors.suppression import clamp, severity_for
from detectors.unusual_volume import PLACES, UnusualVolumeConfig

from .columns import KINDS, Batch


class NotCovered(Exception):
    """The input needs a part of the detector the prototype does not implement."""


@dataclass(frozen=True)
class Found:
    """What is compared with the product's alert (the final version of each alert id)."""

    id: str
    detector: str
    subject: str
    count: int
    first_seen: float
    last_seen: float
    ts: float
    score: float
    severity: str
    facts: tuple[tuple[str, Any], ...] = ()


class Users:
    """Global user codes (the worker would hold one per partition)."""

    def __init__(self) -> None:
        self.code: dict[str, int] = {}
        self.names: list[str] = []

    def encode(self, users: pa.Array) -> np.ndarray:
        enc = pc.dictionary_encode(users)
        local = enc.indices.to_numpy(zero_copy_only=False)
        code, names = self.code, self.names
        table = np.empty(len(enc.dictionary), dtype=np.int64)
        for i, name in enumerate(enc.dictionary.to_pylist()):
            c = code.get(name)
            if c is None:
                c = code[name] = len(names)
                names.append(name)
            table[i] = c
        return table[local]


class Fold:
    """Suppression (:class:`detectors.suppression.Folding`) for hits that arrive in event-time order per
    subject: one open window per (subject, key); the final alert per id is what ``ReplayResult.keep``
    keeps (the highest count)."""

    def __init__(self, detector: str, suppress_s: float, keep_s: float) -> None:
        self.detector, self.suppress_s, self.keep_s = detector, suppress_s, max(keep_s, suppress_s)
        self.open: dict[tuple[str, str], dict[str, Any]] = {}
        self.found: dict[str, dict[str, Any]] = {}

    def add(self, subject: str, key: str, ts: float, newest: float, score: float, **facts: float) -> None:
        rec = self.open.get((subject, key))
        if rec is not None:
            start = rec["s"]
            if start + self.keep_s <= newest or ts >= start + self.suppress_s:
                rec = None
            elif ts <= start - self.suppress_s:
                raise NotCovered("a hit far older than its open window (late event)")
        if rec is None:
            rec = self.open[(subject, key)] = {
                "s": ts, "n": 0, "f": ts, "l": ts, "p": 0.0, "ts": ts,
                "id": alert_id(self.detector, subject, f"{key}:{ts!r}"), "subject": subject, "facts": {}}
            self.found[rec["id"]] = rec
        rec["n"] += 1
        rec["f"] = min(rec["f"], ts)
        rec["l"] = max(rec["l"], ts)
        rec["ts"] = ts  # in order: the latest hit of the last call touching the window
        rec["p"] = max(rec["p"], clamp(score))
        for k, v in facts.items():
            rec["facts"][k] = max(rec["facts"].get(k, v), v)

    def alerts(self) -> dict[str, Found]:
        return {i: Found(i, self.detector, r["subject"], r["n"], r["f"], r["l"], r["ts"], r["p"],
                         severity_for(r["p"]), tuple(sorted(r["facts"].items())))
                for i, r in self.found.items()}


def _user_order(ucode: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stable order by user (arrival order within a user) and the first position of each user's run."""
    order = np.argsort(ucode, kind="stable")
    u = ucode[order]
    starts = np.flatnonzero(np.r_[True, u[1:] != u[:-1]]) if len(u) else np.empty(0, np.int64)
    return order, starts


# ------------------------------------------------------------------------------------------------
# bulk_export: records per sensitivity in a sliding window of buckets, and distinct record ids


class BulkExportKernel:
    """State between batches, per (user, sensitivity) group ``g = user * 4 + sensitivity``: the records
    per bucket still inside ``2 * window_s + grace_s`` of the user's newest counted event, each record id
    with the bucket it was last seen in (same horizon), the newest counted event time per user, and the
    open alert windows."""

    detector = "bulk_export"

    def __init__(self, cfg: BulkExportConfig, users: Users) -> None:
        if any(k not in KINDS for k in (*cfg.kinds, *cfg.document_kinds)):
            raise NotCovered("an activity the column decoder does not code")
        self.cfg, self.users = cfg, users
        self.kinds = np.array([KINDS.index(k) for k in cfg.kinds], dtype=np.int8)
        self.document_kinds = np.array([KINDS.index(k) for k in cfg.document_kinds], dtype=np.int8)
        self.counted = np.union1d(self.kinds, self.document_kinds)
        self.default = SENSITIVITIES.index(cfg.default_sensitivity)
        self.most_records = np.array([cfg.max_records.get(s, math.inf) for s in SENSITIVITIES], dtype=np.float64)
        self.most_ids = np.array([cfg.max_distinct_records.get(s, math.inf) for s in SENSITIVITIES],
                                 dtype=np.float64)
        self.cap = np.array([(cfg.max_distinct_records.get(s) or 0) + 1 for s in SENSITIVITIES], dtype=np.int64)
        self.newest = np.full(0, -np.inf)
        # carried rows: buckets (g, bucket index, records) and ids (g, bucket index, id)
        self.bg = np.empty(0, np.int64)
        self.bb = np.empty(0, np.int64)
        self.bn = np.empty(0, np.int64)
        self.ig = np.empty(0, np.int64)
        self.ib = np.empty(0, np.int64)
        self.iv = pa.array([], pa.string())
        self.fold = Fold(self.detector, cfg.suppress_s, cfg.window_s + cfg.suppress_s + cfg.grace_s)

    def run(self, b: Batch, ucode: np.ndarray) -> None:
        cfg = self.cfg
        bs = cfg.bucket_s
        if len(self.newest) < len(self.users.names):
            self.newest = np.r_[self.newest, np.full(len(self.users.names) - len(self.newest), -np.inf)]
        kind = b.kind
        n_ids = np.diff(b.id_offsets)
        rc = b.record_count
        counted = np.isin(kind, self.counted)
        if cfg.message_attachments:
            counted |= (kind == KINDS.index("message")) & b.file_name_set
        failed = pc.fill_null(pc.equal(b.outcome, "failure"), False).to_numpy(zero_copy_only=False)
        documents = (counted & np.isin(kind, self.document_kinds) & ~failed
                     & (b.object_id_set | ((rc < 0) & (n_ids == 0) & b.file_name_set)))
        if documents.any():
            raise NotCovered("document downloads (the document path is not in the prototype)")
        records = np.where(rc >= 0, rc, n_ids)
        used = counted & ((records > 0) | (n_ids > 0)) & (np.isin(kind, self.kinds) | (kind == KINDS.index("message")))
        # event-time order per user over the counted events (else the late-event path would be needed)
        ci = np.flatnonzero(counted)
        order, starts = _user_order(ucode[ci])
        cu, cts = ucode[ci][order], b.ts[ci][order]
        if len(cts):
            same = cu[1:] == cu[:-1]
            if (same & (cts[1:] < cts[:-1])).any() or (cts[starts] < self.newest[cu[starts]]).any():
                raise NotCovered("an event older than a newer one of its user (late event)")
            ends = np.r_[starts[1:], len(cu)] - 1
            self.newest[cu[ends]] = cts[ends]
        # rows: carried buckets, carried ids, then this batch's events (each group's rows by bucket)
        ei = np.flatnonzero(used)
        sens = b.sens[ei]
        g_e = ucode[ei] * 4 + np.where(sens >= 0, sens, self.default)
        bidx_e = np.floor(b.ts[ei] / bs).astype(np.int64)
        nb, ni, ne = len(self.bg), len(self.ig), len(ei)
        g = np.r_[self.bg, self.ig, g_e]
        bidx = np.r_[self.bb, self.ib, bidx_e]
        recs = np.r_[self.bn, np.zeros(ni, np.int64), records[ei]]
        nid = np.r_[np.zeros(nb, np.int64), np.ones(ni, np.int64), n_ids[ei]]
        phase = np.r_[np.zeros(nb + ni, np.int8), np.ones(ne, np.int8)]
        # one int64 key (group, bucket): a stable sort keeps carried rows first and events in arrival order
        low = int(bidx.min()) - cfg.window_s // bs - 2 if len(bidx) else 0
        key = (g << 32) | (bidx - low)
        srt = np.argsort(key, kind="stable")
        key, g, bidx, recs, nid, phase = key[srt], g[srt], bidx[srt], recs[srt], nid[srt], phase[srt]
        pos = np.empty_like(srt)
        pos[srt] = np.arange(len(srt))  # row -> sorted position
        # record-id occurrences in sorted row order, coded over carried + batch ids
        starts_e, ends_e = b.id_offsets[ei], b.id_offsets[ei + 1]
        del ends_e
        occ_src = np.arange(int(n_ids[ei].sum())) + np.repeat(starts_e - (np.cumsum(n_ids[ei]) - n_ids[ei]), n_ids[ei])
        all_ids = pa.concat_arrays([self.iv, b.ids.take(pa.array(occ_src, pa.int64()))])
        enc = pc.dictionary_encode(all_ids)
        codes = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        occ_row = np.r_[pos[nb:nb + ni], np.repeat(pos[nb + ni:], n_ids[ei])]
        o = np.argsort(occ_row, kind="stable")
        occ_row, codes = occ_row[o], codes[o]
        # the window of each row: from its bucket - window_s + bucket_s (first sorted row with that key)
        lo_b = -((-(bidx * bs - cfg.window_s + bs)) // bs)
        s = np.searchsorted(key, (g << 32) | (lo_b - low), "left")
        cs = np.cumsum(recs)
        cs0 = np.r_[0, cs]
        in_window = cs - cs0[s]
        ocs = np.cumsum(nid)
        ocs0 = np.r_[0, ocs]
        occurrences = ocs - ocs0[s]
        sv = (g & 3).astype(np.int64)
        cand = np.flatnonzero((phase == 1) & ((in_window > self.most_records[sv]) | (occurrences > self.most_ids[sv])))
        names = self.users.names
        fold = self.fold
        for r in cand:  # few: only rows over a threshold by the upper bound
            lo = np.searchsorted(occ_row, s[r], "left")
            hi = np.searchsorted(occ_row, r, "right")
            distinct = min(int(np.unique(codes[lo:hi]).size), int(self.cap[sv[r]]))
            n = int(in_window[r])
            sn = int(sv[r])
            most_r, most_d = self.most_records[sn], self.most_ids[sn]
            if not (n > most_r or distinct > most_d):
                continue
            ratio = max(n / most_r if most_r != math.inf else 0.0, distinct / most_d if most_d != math.inf else 0.0)
            score = min(100.0, round(40 + 15 * math.log2(max(ratio, 1.0)) + 8 * sn, 1))
            i = ei[srt[r] - nb - ni]
            ts = float(b.ts[i])
            fold.add(names[int(g[r]) >> 2], SENSITIVITIES[sn], ts, ts, score, records=n, distinct_records=distinct)
        # carry: what the product's state keeps (buckets and ids within the horizon of the user's newest)
        horizon = self.newest[g >> 2] - 2 * cfg.window_s - cfg.grace_s
        first_of_key = np.r_[True, key[1:] != key[:-1]] if len(key) else np.empty(0, bool)
        ks = np.flatnonzero(first_of_key)
        sums = np.add.reduceat(recs, ks) if len(ks) else np.empty(0, np.int64)
        keep = (bidx[ks] * bs + bs > horizon[ks]) & (sums != 0)
        # a bucket with 0 records is held by the product too (ids only): it is carried by its ids here
        self.bg, self.bb, self.bn = g[ks][keep], bidx[ks][keep], sums[keep]
        og = g[occ_row]
        ob = bidx[occ_row]
        if len(codes) and int(codes.max()) >= 1 << 24:
            raise NotCovered("more than 2**24 distinct record ids in one batch")
        last = np.argsort((og << 24) | codes, kind="stable")  # rows are by bucket: the last is the newest
        og, ob, oc = og[last], ob[last], codes[last]
        tail = np.r_[(og[1:] != og[:-1]) | (oc[1:] != oc[:-1]), True] if len(og) else np.empty(0, bool)
        og, ob, oc = og[tail], ob[tail], oc[tail]
        keep = ob * bs + bs > (self.newest[og >> 2] - 2 * cfg.window_s - cfg.grace_s)
        order = np.argsort((og[keep] << 32) | (ob[keep] - low), kind="stable")
        self.ig, self.ib = og[keep][order], ob[keep][order]
        self.iv = enc.dictionary.take(pa.array(oc[keep][order], pa.int64()))

    def alerts(self) -> dict[str, Found]:
        return self.fold.alerts()


# ------------------------------------------------------------------------------------------------
# unusual_volume: hourly counts against a per-user, per-bucket EWMA baseline


def round_places(x: np.ndarray, places: int = PLACES) -> np.ndarray:
    """``round(v, places)`` of Python for every element: rint(v * 10**places) / 10**places is the same
    double unless v * 10**places is within rounding error of a half; those few are rounded by Python."""
    scale = 10.0 ** places
    s = x * scale
    out = np.rint(s) / scale
    near = np.abs(s - np.floor(s) - 0.5) < 1e-6
    if near.any():
        for i in np.flatnonzero(near):
            out[i] = round(float(x[i]), places)
    return out


class UnusualVolumeKernel:
    """State between batches, dense per user code: 48 means, variances and observation counts, the first
    and last event time, the last closed hour, and the counts of the hours still open ((user, hour,
    count) rows: at most ``grace_s / 3600 + 2`` per user)."""

    detector = "unusual_volume"

    def __init__(self, cfg: UnusualVolumeConfig, users: Users) -> None:
        self.cfg, self.users = cfg, users
        self.ms = np.zeros((0, BUCKETS))
        self.vs = np.zeros((0, BUCKETS))
        self.ks = np.zeros((0, BUCKETS), np.int64)
        self.first = np.full(0, np.nan)
        self.last = np.full(0, np.nan)
        self.closed = np.zeros(0, np.int64)  # hour index
        self.ou = np.empty(0, np.int64)
        self.oh = np.empty(0, np.int64)
        self.oc = np.empty(0, np.int64)
        self.fold = Fold(self.detector, cfg.suppress_s, cfg.suppress_s + cfg.grace_s)
        self._bucket: dict[int, int] = {}

    def _grow(self, n: int) -> None:
        k = n - len(self.first)
        if k > 0:
            self.ms = np.r_[self.ms, np.zeros((k, BUCKETS))]
            self.vs = np.r_[self.vs, np.zeros((k, BUCKETS))]
            self.ks = np.r_[self.ks, np.zeros((k, BUCKETS), np.int64)]
            self.first = np.r_[self.first, np.full(k, np.nan)]
            self.last = np.r_[self.last, np.full(k, np.nan)]
            self.closed = np.r_[self.closed, np.zeros(k, np.int64)]

    def bucket(self, hour: int) -> int:
        b = self._bucket.get(hour)
        if b is None:
            b = self._bucket[hour] = bucket_of(hour * HOUR, self.cfg.timezone)
        return b

    def run(self, b: Batch, ucode: np.ndarray) -> None:
        cfg = self.cfg
        self._grow(len(self.users.names))
        if not b.n:
            return
        order, starts = _user_order(ucode)
        u, ts = ucode[order], b.ts[order]
        n = len(u)
        same = np.r_[False, u[1:] == u[:-1]]
        prev_ts = np.r_[np.nan, ts[:-1]]
        su = u[starts]
        known = ~np.isnan(self.last[su])
        if (same[1:] & (ts[1:] < ts[:-1])).any() or (ts[starts][known] < self.last[su][known]).any():
            raise NotCovered("an event older than a newer one of its user (late event)")
        new = su[~known]
        self.first[new] = ts[starts][~known]
        self.last[new] = ts[starts][~known]
        self.closed[new] = np.floor(ts[starts][~known] / HOUR).astype(np.int64) - 1
        gap = np.where(same, ts - prev_ts, 0.0)
        gap[starts] = ts[starts] - self.last[su]
        if (gap > min(cfg.forget_days * 86400.0, (MAX_GAP_HOURS - 4) * HOUR)).any():
            raise NotCovered("a gap that resets the baseline or hits the gap cap")
        if (ts - self.first[u] > cfg.max_age_days * 86400.0).any():
            raise NotCovered("a baseline older than max_age_days (reset)")
        hidx = np.floor(ts / HOUR).astype(np.int64)
        run_start = np.r_[True, ~same[1:] | (hidx[1:] != hidx[:-1])]
        run_id = np.cumsum(run_start) - 1
        rs = np.flatnonzero(run_start)
        ru, rh = u[rs], hidx[rs]
        carried = np.zeros(len(rs), np.int64)
        if len(self.ou):
            okey = (self.ou << 21) | self.oh
            o = np.argsort(okey)
            okey_s, oc_s = okey[o], self.oc[o]
            rkey = (ru << 21) | rh
            j = np.minimum(np.searchsorted(okey_s, rkey), len(okey_s) - 1)
            hit = okey_s[j] == rkey
            carried[hit] = oc_s[j[hit]]
        count = np.arange(n) - rs[run_id] + 1 + carried[run_id]
        least = min(cfg.min_events, cfg.off_hours_min_events)
        judged = np.flatnonzero((count >= least) & (ts - self.first[u] >= cfg.warmup_days * 86400.0))
        upto = np.floor((ts - cfg.grace_s) / HOUR).astype(np.int64) - 1
        ends = np.r_[starts[1:], n] - 1
        prev_closed = self.closed[su].copy()
        final = np.maximum(prev_closed, upto[ends])
        # hourly counts of the hours to fold: carried open hours plus this batch's runs
        h0 = int(prev_closed.min()) + 1
        steps = int(final.max()) - h0 + 1
        slot = np.full(len(self.first), -1, np.int64)
        slot[su] = np.arange(len(su))
        if steps > 0:
            counts = np.zeros((len(su), steps))
            run_len = np.diff(np.r_[rs, n])
            inside = (rh - h0 >= 0) & (rh - h0 < steps)
            np.add.at(counts, (slot[ru[inside]], rh[inside] - h0), run_len[inside])
            if len(self.ou):
                mine = slot[self.ou] >= 0
                inside = mine & (self.oh - h0 >= 0) & (self.oh - h0 < steps)
                np.add.at(counts, (slot[self.ou[inside]], self.oh[inside] - h0), self.oc[inside])
            ms, vs, kk = self.ms[su], self.vs[su], self.ks[su]
        # the baseline each judged event reads: after folding the hours up to its own upto
        k_e = np.clip(upto[judged] - h0 + 1, 0, max(steps, 0))
        by_step = np.argsort(k_e, kind="stable")
        seen_m = np.zeros(len(judged))
        seen_v = np.zeros(len(judged))
        jb = np.array([bucket_of(float(t), cfg.timezone) for t in ts[judged]], dtype=np.int64)
        js = slot[u[judged]]
        p = 0

        def capture(step: int) -> None:
            nonlocal p
            q = p
            while q < len(by_step) and k_e[by_step[q]] == step:
                q += 1
            if q > p:
                idx = by_step[p:q]
                if steps > 0:
                    seen_m[idx] = ms[js[idx], jb[idx]]
                    seen_v[idx] = vs[js[idx], jb[idx]]
                else:
                    seen_m[idx] = self.ms[u[judged][idx], jb[idx]]
                    seen_v[idx] = self.vs[u[judged][idx], jb[idx]]
                p = q

        capture(0)
        alpha0 = cfg.alpha
        for step in range(max(steps, 0)):
            hour = h0 + step
            rows = np.flatnonzero((prev_closed < hour) & (hour <= final))
            if len(rows):
                bk = self.bucket(hour)
                nk = np.minimum(kk[rows, bk] + 1, 10_000)
                kk[rows, bk] = nk
                a = 1 / nk
                alpha = np.where(alpha0 >= a, alpha0, a)
                mean = ms[rows, bk]
                diff = counts[rows, step] - mean
                incr = alpha * diff
                ms[rows, bk] = round_places(mean + incr)
                vs[rows, bk] = round_places((1 - alpha) * (vs[rows, bk] + diff * incr))
            capture(step + 1)
        if steps > 0:
            self.ms[su], self.vs[su], self.ks[su] = ms, vs, kk
        self.closed[su] = final
        self.last[su] = ts[ends]
        # open hours left: carried ones of users without events here, and every hour after ``final``
        cu = np.r_[self.ou, ru]
        ch = np.r_[self.oh, rh]
        cc = np.r_[self.oc, np.diff(np.r_[rs, n])]
        keep = ch > self.closed[cu]
        cu, ch, cc = cu[keep], ch[keep], cc[keep]
        key = (cu << 21) | ch
        uk, inv = np.unique(key, return_inverse=True)
        self.ou, self.oh = uk >> 21, uk & ((1 << 21) - 1)
        self.oc = np.bincount(inv, weights=cc).astype(np.int64) if len(uk) else np.empty(0, np.int64)
        # judge (few events: count at or over the lowest threshold, past warm-up), in arrival order per user
        names = self.users.names
        fold = self.fold
        for q, e in enumerate(judged):
            c = int(count[e])
            t = float(ts[e])
            mean, var = float(seen_m[q]), float(seen_v[q])
            z = (c - mean) / math.sqrt(var + cfg.min_variance)
            subject = names[int(u[e])]
            if c >= cfg.min_events and z >= cfg.z_threshold:
                fold.add(subject, "volume", t, t, min(95.0, 45 + 6 * (z - cfg.z_threshold) + 10))
            if c >= cfg.off_hours_min_events and mean < cfg.off_hours_max_mean:
                fold.add(subject, "hours", t, t, 50.0)

    def alerts(self) -> dict[str, Found]:
        return self.fold.alerts()
