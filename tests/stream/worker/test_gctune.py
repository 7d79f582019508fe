import gc

from stream.worker.gctune import tune_for_throughput


def test_tuning_raises_the_collection_thresholds_and_keeps_the_collector_on():
    before = gc.get_threshold()
    try:
        tune_for_throughput()
        assert gc.isenabled()
        assert gc.get_threshold() == (200_000, 20, 100)  # gen 0 above a micro-batch's live objects
        assert gc.get_freeze_count() > 0  # what existed at start-up is never rescanned
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
