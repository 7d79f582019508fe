"""The event contract: the canonical audit event, its codec, settings, topics and keying."""
