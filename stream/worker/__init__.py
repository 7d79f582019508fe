"""The Kafka worker: the Faust app, the micro-batch step and how its outcome reaches Kafka."""
