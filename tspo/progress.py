"""Progress output: the one owner of how long work reports itself.

On a terminal a tqdm bar redraws in place. When the stream is *not* a terminal (``> log.txt``, a
pipe, CI) redraws would be thousands of ``\\r`` updates in the file, so :class:`LineProgress` prints
plain lines instead: one each time another :data:`LINE_EVERY_FRACTION` of the work is done, and at
least one every :data:`HEARTBEAT_S` seconds, but never two within :data:`MIN_LINE_INTERVAL_S`
seconds (the last line, at the end, always). Every progress display in tspo (training steps,
held-out checks, rendering, feature encoding, evaluation) comes from :func:`progress_bar` or, for
Lightning, :func:`tqdm_class`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from typing import IO, Any

from tqdm import tqdm

LINE_EVERY_FRACTION = 0.10  # a line per 10 % of the work ...
HEARTBEAT_S = 60.0  # ... and at least one a minute when 10 % takes longer ...
MIN_LINE_INTERVAL_S = 10.0  # ... but never two lines within 10 s (except the final one)
LINE_FORMAT = "{desc} {n_fmt}/{total_fmt} ({percentage:.0f}%) [{elapsed}<{remaining}, {rate_fmt}{postfix}]"
LINE_FORMAT_NO_TOTAL = "{desc} {n_fmt} [{elapsed}, {rate_fmt}{postfix}]"


def is_terminal(stream: IO[str] | None) -> bool:
    """Whether ``stream`` is an interactive terminal (a closed or odd stream counts as not)."""
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):
        return False


class LineProgress(tqdm):
    """A tqdm that writes whole lines (``step 1200/3000 (40%) [00:48<01:12, 25.0it/s, reward=1.2]``)
    at the pace in the module docstring instead of redrawing; for files and pipes. ``clock``
    (seconds) is injectable so the pace can be tested without waiting."""

    def __init__(self, *args: Any, clock: Callable[[], float] = time.time, **kwargs: Any) -> None:
        self._clock = clock
        self._line_t: float | None = None
        self._line_n = -1
        self._next_fraction = 0.0
        kwargs.pop("dynamic_ncols", None)
        kwargs.pop("position", None)
        kwargs["bar_format"] = None  # chosen per line: with or without a total
        kwargs.update(mininterval=0.0, miniters=1, ascii=True)  # the pace is ours (display)
        super().__init__(*args, **kwargs)
        self._time = clock  # tqdm's elapsed / rate / delay read the same clock as the pace
        self.start_t = self.last_print_t = clock()

    def _line(self) -> str:
        fmt = LINE_FORMAT if self.total else LINE_FORMAT_NO_TOTAL
        d = self.format_dict
        d["bar_format"] = fmt
        d["prefix"] = (self.desc or "progress").rstrip(": ")
        d["ncols"] = None
        return self.format_meter(**d).strip()

    def _due(self, final: bool) -> bool:
        now = self._clock()
        if final:
            return self.n != self._line_n
        if self._line_t is None:
            return True
        if now - self._line_t < MIN_LINE_INTERVAL_S:
            return False
        fraction = self.n / self.total if self.total else None
        return (fraction is not None and fraction >= self._next_fraction) or now - self._line_t >= HEARTBEAT_S

    def _write_line(self) -> None:
        self._line_t, self._line_n = self._clock(), self.n
        if self.total:
            done = self.n / self.total
            self._next_fraction = (int(done / LINE_EVERY_FRACTION + 1e-9) + 1) * LINE_EVERY_FRACTION
        self.fp.write(self._line() + "\n")
        self.fp.flush()

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        if msg is not None or self.disable:  # '' = tqdm clearing a redrawn bar: nothing to clear in a log
            return False
        if self._due(final=False):
            self._write_line()
        return True

    def clear(self, nolock: bool = False) -> None:
        pass

    def moveto(self, n: int) -> None:
        pass

    def reset(self, total: float | None = None) -> None:
        self._line_t, self._line_n, self._next_fraction = None, -1, 0.0
        super().reset(total=total)

    def close(self) -> None:
        if not self.disable and self._line_t is not None and self._due(final=True):
            self._write_line()  # where it ended, once
        self.leave = False  # tqdm would redraw the last bar and add a newline
        super().close()


def tqdm_class(stream: IO[str] | None) -> type[tqdm]:
    """tqdm on a terminal, :class:`LineProgress` on anything else."""
    return tqdm if is_terminal(stream) else LineProgress


def progress_bar(
    iterable: Iterable | None = None, *, desc: str, unit: str = "it", total: int | None = None,
    disable: bool = False, file: IO[str] | None = None, delay_s: float = 0.0, **kwargs: Any,
) -> tqdm:
    """A progress display over ``iterable`` (or ``total`` units, updated by hand) on ``file``
    (default stderr): a redrawn bar on a terminal, plain lines elsewhere. ``delay_s``: nothing
    is shown for work that finishes sooner (e.g. a short video's encode)."""
    file = sys.stderr if file is None else file
    return tqdm_class(file)(iterable, desc=desc, unit=unit, total=total, disable=disable, file=file,
                            delay=delay_s, **kwargs)  # fmt: skip
