"""Prometheus metrics, structured logs and the metrics endpoint."""
