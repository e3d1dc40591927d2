"""The benchmark's use of wrk: a misparsed unit or a missed error count would publish wrong figures, and a
repeated request id would make the load itself wrong."""

from __future__ import annotations

import json
import re

import pytest

from bench.run import Cell, lua_script, parse_wrk, percentile

# Captured from wrk 4.1.0 (`wrk -t1 -c2 -d1s --latency`), with an error line as wrk prints it.
WRK_OUTPUT = """Running 1s test @ http://127.0.0.1:3441/mcp
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.16ms    1.02ms   8.56ms   88.96%
    Req/Sec     2.08k   424.41     2.75k    70.00%
  Latency Distribution
     50%  802.00us
     75%    0.97ms
     90%    2.43ms
     99%    5.50ms
  2068 requests in 1.00s, 482.79KB read
  Non-2xx or 3xx responses: 7
Requests/sec:   2067.26
Transfer/sec:    482.62KB
"""


def test_wrk_output_is_read_with_units_and_errors() -> None:
    cell = parse_wrk(WRK_OUTPUT, Cell())
    assert cell.calls == 2068
    assert cell.seconds == pytest.approx(1.0)
    assert cell.p50_ms == pytest.approx(0.802)  # microseconds converted
    assert cell.p99_ms == pytest.approx(5.5)
    assert cell.errors == 7
    assert cell.rate == pytest.approx(2068.0)
    assert cell.note is None


def test_wrk_output_without_requests_is_flagged_not_zeroed_silently() -> None:
    cell = parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n", Cell())
    assert cell.calls == 0
    assert cell.note is not None and "Connection refused" in cell.note


def test_percentile_picks_the_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) in (50.0, 51.0)
    assert percentile(values, 0.99) == 99.0
    assert percentile([3.0], 0.99) == 3.0


def test_wrk_posts_a_fresh_request_id_each_time() -> None:
    """Requests in flight at once on one 2025-era session must not share an id, so the script builds
    each body around a counter; what it concatenates must be the same JSON with that id."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo"}})
    script = lua_script({"Content-Type": "application/json"}, body)
    assert "wrk.body" not in script and "sent = sent + 1" in script
    head, tail = re.findall(r"\[==\[(.*?)\]==\]", script.split("wrk.format", 1)[1])
    assert json.loads(f"{head}7{tail}") == {**json.loads(body), "id": 7}
