"""The metrics listener: /metrics parsed as Prometheus text (with the Python client's own parser),
its counters and gauges checked against what the test did, and /healthz and /readyz as Redis
goes away and comes back."""

import socket
import urllib.error
import urllib.request

import pytest

from conftest import wait_for, LOW_RISK
from prometheus_client.parser import text_string_to_metric_families


def get(url, method="GET"):
    """(status, content type, body) of one HTTP request."""
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def scrape(env):
    """Every sample of /metrics as {(name, frozenset(labels)): value}, and the families."""
    status, ctype, body = get(env.daemon.metrics_url + "/metrics")
    assert status == 200, body
    assert ctype.startswith("text/plain; version=0.0.4"), ctype
    families = {f.name: f for f in text_string_to_metric_families(body)}
    samples = {}
    for f in families.values():
        for s in f.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples, families


def value(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]


@pytest.mark.daemon_config({"holds": {"stale_after": "2s"},
                            "server": {"max_connections_per_person": 1}})
def test_metrics_count_what_happened(env):
    samples, families = scrape(env)
    # The families a dashboard needs are there from the start, with their types.
    expected = {
        "fristad_requests": "counter", "fristad_request_duration_seconds": "histogram",
        "fristad_connections_open": "gauge", "fristad_connections_accepted": "counter",
        "fristad_connections_refused": "counter", "fristad_tls_handshakes_failed": "counter",
        "fristad_redis_up": "gauge", "fristad_index_version": "gauge",
        "fristad_index_last_change_age_seconds": "gauge", "fristad_holds_open": "gauge",
        "fristad_shelters_stale": "gauge", "fristad_searches_no_match_reasons": "counter",
        "fristad_build_info": "gauge",
    }
    for name, kind in expected.items():
        assert name in families and families[name].type == kind, (name, families.get(name))
    assert value(samples, "fristad_index_loaded") == 1
    assert value(samples, "fristad_redis_up", link="command") == 1
    assert value(samples, "fristad_redis_up", link="events") == 1
    assert value(samples, "fristad_requests_total", op="search", code="ok") == 0

    env.add_shelter("frida-sthlm", "Kvinnojouren Frida", municipality="0180", boys_max_age=12)
    env.add_unit("frida-sthlm", "r1", 4)
    frida = env.cli("shelter", "frida-sthlm")
    frida.ok("vacancy", "frida-sthlm", "r1", "free")
    social = env.cli("social", "0180")
    for _ in range(3):
        social.ok("search", "--from", "1480", "--risk", "low")
    # No unit for a boy of 15: a no-match search, with its reason.
    res = social.ok("search", "--from", "1480", "--risk", "low", "--child", "15m")
    assert res["results"] == []
    social("shelter", "retire", "frida-sthlm").refused("forbidden")
    social.ok("hold", "frida-sthlm", "r1", *LOW_RISK, "--ref", "KS-1")
    # A connection that never finishes its handshake, and a second one of a principal that
    # may have one.
    with socket.create_connection((env.daemon.host, env.daemon.port)) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        s.settimeout(10)
        try:
            while s.recv(4096):
                pass
        except ConnectionResetError:
            pass  # the daemon drops it: it is no TLS
    first = env.connect("oncall", "jour-1")
    first.call("whoami")
    second = env.connect("oncall", "jour-1")
    with pytest.raises(Exception):
        second.call("whoami")

    def counted():
        samples, _ = scrape(env)
        return samples if value(samples, "fristad_tls_handshakes_failed_total") >= 1 and \
            value(samples, "fristad_connections_refused_total",
                  reason="max_connections_per_person") >= 1 else None

    samples = wait_for(counted, 10, "the refused connections to be counted")
    assert value(samples, "fristad_requests_total", op="search", code="ok") == 4
    assert value(samples, "fristad_requests_total", op="shelter.retire", code="forbidden") == 1
    assert value(samples, "fristad_requests_total", op="hold", code="ok") == 1
    assert value(samples, "fristad_request_duration_seconds_count", op="search") == 4
    assert 0 < value(samples, "fristad_request_duration_seconds_sum", op="search") < 10
    buckets = [(float(dict(k[1])["le"]), v) for k, v in samples.items()
               if k[0] == "fristad_request_duration_seconds_bucket" and
               dict(k[1])["op"] == "search"]
    buckets.sort()
    assert buckets[-1] == (float("inf"), 4)
    assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), buckets
    assert value(samples, "fristad_searches_total") == 4
    assert value(samples, "fristad_searches_no_match_total") == 1
    assert value(samples, "fristad_searches_no_match_reasons_total", reason="boys_age") == 1
    assert value(samples, "fristad_searches_no_match_reasons_total", reason="beds") == 0
    assert value(samples, "fristad_holds_open", state="held") == 1
    assert value(samples, "fristad_units_free") == 0
    assert value(samples, "fristad_shelters") == 1
    assert value(samples, "fristad_connections_accepted_total") >= 10
    assert value(samples, "fristad_index_version") >= 4
    assert 0 <= value(samples, "fristad_index_last_change_age_seconds") < 60
    assert value(samples, "fristad_watchers") == 0
    assert value(samples, "fristad_standing_searches") == 0
    # A watch open and a standing search kept: both gauges count them while they last.
    watcher = env.connect("admin", "ops-anna")
    watcher.send("watch")
    watcher.read_frame(timeout=10)
    standing = social.ok("search", "--from", "0180", "--risk", "low", "--child", "15m",
                         "--standing", "--ref", "KS-2")
    samples = wait_for(lambda: (lambda s: s if value(s, "fristad_watchers") == 1 else None)(
        scrape(env)[0]), 10, "the watcher to be counted")
    assert value(samples, "fristad_standing_searches") == 1, standing
    watcher.close()
    wait_for(lambda: value(scrape(env)[0], "fristad_watchers") == 0, 10,
             "the closed watcher to be gone from the count")
    first.close()
    # Nobody confirms the vacancies: after stale_after the shelter counts as stale.
    wait_for(lambda: value(scrape(env)[0], "fristad_shelters_stale") == 1, 10,
             "the shelter to be counted stale")


def test_health_and_readiness_follow_redis(env):
    base = env.daemon.metrics_url
    assert get(base + "/healthz")[0:3:2] == (200, "ok\n")
    assert get(base + "/readyz")[0:3:2] == (200, "ready\n")
    assert get(base + "/nothing")[0] == 404
    assert get(base + "/metrics", method="POST")[0] in (405, 501)

    env.redis.stop()
    status, _, body = wait_for(lambda: (lambda r: r if r[0] == 503 else None)(
        get(base + "/readyz")), 15, "/readyz to say not ready")
    assert "redis down" in body, body
    # Alive all the same, and the metrics answer from memory without Redis.
    assert get(base + "/healthz")[0] == 200
    samples, _ = scrape(env)
    assert value(samples, "fristad_redis_up", link="command") == 0
    assert value(samples, "fristad_index_loaded") == 1

    env.redis.start()
    wait_for(lambda: get(base + "/readyz")[0] == 200, 20, "/readyz to be ready again")
    assert value(scrape(env)[0], "fristad_redis_up", link="command") == 1


@pytest.mark.daemon_config({"metrics": {"listen": ""}})
def test_empty_listen_turns_metrics_off(env):
    assert "metrics: listening" not in env.daemon.log_text()
