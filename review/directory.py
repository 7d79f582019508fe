"""The staff reference the review app's person pages read (team, peers, notice and leave dates).

Where the worker reads its reference data, so does the app: the files in ``reference_dir`` and, when a
broker is configured, the compacted reference topics (``custodes reference push``, or an HR system
producing to ``<reference_topic_prefix>staff``), applied on top of the files exactly as the worker
applies them (stream/detection/reference.py). Without a broker only the files are read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable

from detectors.reference import Reference, ReferenceHolder
from stream.contract.settings import Settings

log = logging.getLogger("custodes.review.directory")


class TopicDirectory:
    """The files plus the reference topics, followed by a background thread from :meth:`start` to
    :meth:`stop`. ``current()`` is the latest snapshot; the files are re-checked at most every
    ``reference_reload_s``."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        from stream.detection.reference import FileReloader, load_dir

        self.settings = settings
        self.clock = clock
        try:
            files = load_dir(settings.reference_dir)
        except (OSError, ValueError) as exc:
            log.warning("the reference files could not be read for the person pages (%s)", type(exc).__name__)
            files = Reference()
        self.holder = ReferenceHolder(files)
        self.reloader = FileReloader(self.holder, settings.reference_dir)
        self._checked = clock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.failed = False

    def current(self) -> Reference:
        now = self.clock()
        if now - self._checked >= self.settings.reference_reload_s:
            self._checked = now
            self.reloader.check()
        return self.holder.current

    def start(self) -> None:
        ready = threading.Event()

        def run() -> None:
            from stream.detection.reference import follow_topics

            async def main() -> None:
                self._loop = asyncio.get_running_loop()
                self._stop = asyncio.Event()
                ready.set()
                await follow_topics(self.settings, self.holder, self.reloader, self._stop)

            try:
                asyncio.run(main())
            except Exception as exc:  # noqa: BLE001 - the pages then show the files' data only
                self.failed = True
                log.error("the reference topics could not be followed (%s): person pages show the "
                          "reference files only", type(exc).__name__)
            finally:
                ready.set()

        self._thread = threading.Thread(target=run, name="custodes-review-reference", daemon=True)
        self._thread.start()
        ready.wait(timeout=10)

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already ended
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=10)


class FileDirectory:
    """The files only (no broker): re-read when they change (:func:`review.story.reference_for`)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def current(self) -> Reference | None:
        from .story import reference_for

        return reference_for(self.settings.reference_dir)

    def start(self) -> None:
        return

    def stop(self) -> None:
        return


def directory_for(settings: Settings) -> TopicDirectory | FileDirectory:
    """What the app reads the staff reference through: files and topics with a broker, else the files."""
    return TopicDirectory(settings) if settings.broker else FileDirectory(settings)
