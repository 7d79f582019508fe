"""The streaming worker: Faust app, micro-batches, hand-off, dead letters."""
