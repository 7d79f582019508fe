"""The event contract: the canonical audit event (models derived from detectors.event.Event), its
codec (decode, validate, the rejection reasons), the JSON Schema generated from it, and the settings."""
