"""The worker's parts (issue 15 restructure: app, pipeline, handoff ... move here)."""
