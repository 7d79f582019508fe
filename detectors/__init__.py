"""Custodes detectors: pure logic. No Kafka, no I/O; the clock is passed in.

The same detector objects run inside the Faust worker and in offline replay (``custodes replay``).
"""
