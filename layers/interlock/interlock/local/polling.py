"""A daemon thread that calls ``poll_once`` until stopped: what the local event sources have in common."""

from __future__ import annotations

import threading

from interlock.local import get_logger

log = get_logger(__name__)


class Poller:
    """Calls :meth:`poll_once` in a loop on its own thread; waits ``idle_seconds`` after a poll that
    handled nothing, polls again at once after one that did. A failing poll is logged and retried."""

    def __init__(self, name: str, idle_seconds: float) -> None:
        self.name = name
        self.idle_seconds = idle_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self) -> int:
        """One cycle; the number of things it handled."""
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop polling; a cycle under way is finished first."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                handled = self.poll_once()
            except Exception:
                log.exception("%s: polling failed; trying again", self.name)
                handled = 0
            if not handled:
                self._stop.wait(self.idle_seconds)
