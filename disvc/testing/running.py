"""``with`` for the substrate's long-running pieces: entering starts one,
leaving stops it, whatever happened inside (the API server, envtest, the
KServe stand-in, the data plane, a load of clients)."""

from __future__ import annotations

from typing import Self


class Running:
    """A piece with ``start()`` (returning itself) and ``stop()``."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> object:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
