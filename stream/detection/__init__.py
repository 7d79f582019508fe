"""Wiring detectors and rules to reference data and configuration."""
