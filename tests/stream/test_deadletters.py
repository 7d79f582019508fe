"""custodes deadletters: what is shown of a dead letter (stream.deadletters), without a broker."""

from __future__ import annotations

from stream.deadletters import letter, redact


def test_redact_keeps_the_shape_not_the_values() -> None:
    raw = b'{"user": {"id": "PC4412", "name": "Alex Morgan"}, "n": 3, "ok": true, "ids": [1, 2, 3, 4, 5, 6, 7]}'
    shown = redact(raw)
    assert "PC4412" not in shown and "Alex" not in shown
    assert shown == ('{"user":{"id":"<6 chars>","name":"<11 chars>"},"n":"#","ok":true,'
                     '"ids":["#","#","#","#","#","…"]}')
    assert redact(b'{"user": {"id": "PC44') == '{"xxxx": {"xx": "xxxx'
    assert redact(b"\xff\xfe nope") == "<7 bytes, not UTF-8>"
    assert len(redact(b'{"a": "' + b"x" * 5000 + b'", "b": [' + b"1," * 2000 + b'1]}', limit=40)) == 41


def test_letter_from_headers() -> None:
    worker = letter(2, 17, b'{"user": 5}', [
        ("custodes.reason", b"wrong_type"), ("custodes.detail", b"user must be an object"),
        ("custodes.source.topic", b"custodes-audit-events"), ("custodes.source.partition", b"1"),
        ("custodes.source.offset", b"99"), ("custodes.source.line", b"3"), ("custodes.field", b"user")])
    assert worker.field == "user" and worker.reason == "wrong_type"
    assert worker.source == "custodes-audit-events partition 1 offset 99 line 3"
    assert worker.line().splitlines() == [
        "2:17  wrong_type at user  from custodes-audit-events partition 1 offset 99 line 3",
        "    user must be an object", '    {"user":"#"}']
    ingest = letter(0, 0, b"x" * 10, [("custodes.reason", b"invalid_json"), ("custodes.detail", b"not valid JSON"),
                                      ("custodes.source.file", b"/logs/a.jsonl"), ("custodes.source.line", b"4"),
                                      ("custodes.truncated", b"999999")])
    assert ingest.source == "/logs/a.jsonl:4" and ingest.field is None
    assert ingest.excerpt == "xxxxxxxxxx  [input was 999999 bytes, cut]"
