"""OracleCache: memoisation, hit rate, SQLite persistence, failed answers not cached."""

import numpy as np
import pytest

from tspo.rewards import OracleAnswer, OracleCache, OracleConfigError, OracleQuery, SimulatedOracle

OPTS = ("a", "b", "c")


class CountingOracle:
    """Answers 'A' (or fails for sample ids starting with 'bad') and records what it was asked."""

    needs_frames = False

    def __init__(self, oracle_id="counting"):
        self.oracle_id = oracle_id
        self.calls: list[list[str]] = []

    def answer(self, queries):
        self.calls.append([qq.sample_id for qq in queries])
        return [OracleAnswer.failed("server down") if qq.sample_id.startswith("bad") else OracleAnswer("A", raw="A")
                for qq in queries]


def q(sample_id, positions, ts=None):
    positions = np.asarray(positions)
    ts = np.asarray(positions, float) if ts is None else np.asarray(ts, float)
    return OracleQuery(sample_id, "q", OPTS, ts, positions=positions)


def test_hits_misses_and_in_batch_duplicates():
    inner = CountingOracle()
    cache = OracleCache(inner)
    out = cache.answer([q("s", [1, 2]), q("s", [1, 2]), q("s", [1, 3]), q("t", [1, 2])])
    assert [a.letter for a in out] == ["A"] * 4
    assert inner.calls == [["s", "s", "t"]]  # the duplicate selection is asked once
    assert (cache.hits, cache.misses) == (1, 3)
    cache.answer([q("s", [1, 2]), q("t", [1, 2])])
    assert len(inner.calls) == 1  # all hits: the wrapped oracle is not called
    assert cache.hit_rate == pytest.approx(3 / 6)
    assert cache.stats() == {"hits": 3, "misses": 3, "hit_rate": 0.5, "size": 3}


def test_key_is_sorted_selection_and_oracle_id():
    inner = CountingOracle()
    cache = OracleCache(inner)
    cache.answer([q("s", [2, 5])])
    # the same picks given in another order (positions need not follow timestamps order) -> hit
    cache.answer([OracleQuery("s", "q", OPTS, [2.0, 5.0], positions=np.array([5, 2]))])
    assert cache.hits == 1
    other = OracleCache(CountingOracle("other-model"))
    assert other.answer([q("s", [2, 5])])[0].letter == "A" and other.misses == 1


def test_key_is_the_selected_timestamps_not_the_grid_positions(tmp_path):
    """Positions mean different frames on another candidate grid (fps / max_candidates): a persisted
    cache reused with another grid must not hand back answers about other frames."""
    path = tmp_path / "oracle.sqlite"
    with OracleCache(CountingOracle(), path=path) as cache:        # run 1: 1 fps grid
        cache.answer([q("s", [3, 4], ts=[3.0, 4.0])])
    inner = CountingOracle()
    with OracleCache(inner, path=path) as rerun:                    # run 2: 2 fps grid
        rerun.answer([q("s", [3, 4], ts=[1.5, 2.0])])               # same positions, other frames: asked
        assert (rerun.hits, rerun.misses) == (0, 1) and len(inner.calls) == 1
        rerun.answer([q("s", [6, 8], ts=[3.0, 4.0])])               # other positions, the same frames: cached
        rerun.answer([q("s", [6, 8], ts=[3.0004, 4.0])])            # equal to the millisecond
        assert (rerun.hits, rerun.misses) == (2, 1) and len(inner.calls) == 1


def test_key_includes_the_frame_pixel_size():
    class PixelCounter(CountingOracle):
        needs_frames = True

    inner = PixelCounter()
    cache = OracleCache(inner)

    def pq(h, w):
        return OracleQuery("s", "q", OPTS, [1.0, 2.0], frames=np.zeros((2, h, w, 3), np.uint8))

    cache.answer([pq(16, 16), pq(16, 16), pq(16, 28), pq(32, 56)])  # one caller resize differs from another
    assert inner.calls == [["s", "s", "s"]] and (cache.hits, cache.misses) == (1, 3)


def test_unparsed_answers_are_cached_failed_ones_are_not():
    class Unreadable(CountingOracle):
        def answer(self, queries):
            self.calls.append([qq.sample_id for qq in queries])
            return [OracleAnswer(None, raw="no idea") for _ in queries]

    inner = Unreadable()
    cache = OracleCache(inner)
    cache.answer([q("s", [1])])
    out = cache.answer([q("s", [1])])                               # the model did answer: not re-asked
    assert len(inner.calls) == 1 and out[0].unparsed and out[0].raw == "no idea"


def test_timestamps_key_when_no_positions():
    cache = OracleCache(CountingOracle())
    cache.answer([OracleQuery("s", "q", OPTS, [1.0, 2.0])])
    cache.answer([OracleQuery("s", "q", OPTS, [1.0, 2.0]), OracleQuery("s", "q", OPTS, [1.0, 2.5])])
    assert (cache.hits, cache.misses) == (1, 2)


def test_failed_answers_are_not_cached():
    inner = CountingOracle()
    cache = OracleCache(inner)
    first = cache.answer([q("bad1", [1])])
    assert first[0].error == "server down"
    cache.answer([q("bad1", [1])])
    assert len(inner.calls) == 2 and len(cache) == 0


def test_sqlite_persistence_survives_a_restart(tmp_path):
    path = tmp_path / "sub" / "oracle.sqlite"
    with OracleCache(CountingOracle(), path=path) as cache:
        cache.answer([q("s", [1, 2]), q("s", [3, 4]), q("bad", [1])])
        assert len(cache) == 2
    inner = CountingOracle()
    with OracleCache(inner, path=path) as resumed:
        out = resumed.answer([q("s", [1, 2]), q("s", [3, 4])])
        assert [a.letter for a in out] == ["A", "A"] and inner.calls == []
        assert resumed.hit_rate == 1.0


def test_cache_in_front_of_simulated_is_transparent():
    oracle = SimulatedOracle(guess="random", seed=1)
    queries = [OracleQuery(f"s{i % 3}", "q", OPTS, [float(i % 5)], positions=np.array([i % 5]),
                           meta={"answer": "B", "kind": "needle", "target_spans_s": [[2, 3]]}) for i in range(40)]
    cached = OracleCache(oracle)
    assert [a.letter for a in cached.answer(queries)] == [a.letter for a in oracle.answer(queries)]
    assert cached.misses == 15 and cached.hits == 25


def test_cache_rejects_non_oracles():
    with pytest.raises(OracleConfigError, match="wraps an Oracle"):
        OracleCache(object())


def test_bench_cache_hit_rate_rises_as_the_policy_sharpens():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_oracle.py"
    spec = importlib.util.spec_from_file_location("bench_oracle", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    sharp = bench.bench_cache_hit_rate(tau=0.01, steps=40)
    soft = bench.bench_cache_hit_rate(tau=0.025, steps=40)
    asked = int(sharp["result"].split(" of ")[0])
    assert sharp["unit"] == "hit rate" and sharp["value"] == pytest.approx(1 - asked / 320, abs=1e-3)
    assert sharp["value"] > soft["value"]
