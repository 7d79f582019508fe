"""Custodes runtime: event schema and codecs, the Faust app and topics, sinks, retention, metrics, CLI."""
