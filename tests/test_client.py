"""PostHogClient: wire-level behaviour on httpx.MockTransport, then against the real test server."""

from __future__ import annotations

import json
import random

import httpx
import pytest

from api.client import PostHogClient, validate_host
from api.errors import (
    ApiError,
    CannotCreateRecordings,
    CredentialsRejected,
    InvalidHost,
    MissingScope,
    NetworkError,
    NotFound,
    RateLimited,
    ServerUnavailable,
    Unreachable,
    ValidationFailed,
)
from api.models import TITLE_MAX, WireSegment, clean_patch
from api.ratelimit import RateBudget
from api.retry import RetryPolicy
from tests.conftest import READ_KEY, WRITE_KEY

RID = "5f1c3a3e-1111-4222-8333-944455556666"
RECORDING = {"id": RID, "platform": "desktop_audio", "status": "recording", "transcript_segments": []}
THROTTLED = "Request was throttled. Expected available in {} seconds."


class FakeClock:
    """A clock that only moves when something sleeps on it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def reply(status: int, body: object = None, headers: dict[str, str] | None = None) -> httpx.Response:
    if isinstance(body, str):
        return httpx.Response(status, text=body, headers=headers)
    return httpx.Response(status, json=RECORDING if body is None else body, headers=headers)


class Wire:
    """A scripted transport: answers in order (the last one repeats), records requests and sleeps."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def client(self, max_attempts: int = 3, budget: RateBudget | None = None) -> PostHogClient:
        policy = RetryPolicy(max_attempts=max_attempts, base_delay_s=1.0, max_delay_s=30.0, rng=random.Random(7))
        return PostHogClient("https://us.posthog.com", WRITE_KEY, 1, transport=httpx.MockTransport(self._handle),
                             retry=policy, budget=budget or RateBudget(10_000), sleep=self.sleeps.append)

    def body(self, index: int = -1) -> dict:
        return json.loads(self.requests[index].content)


def patch_with(*answers: httpx.Response | Exception, max_attempts: int = 3) -> Wire:
    """Run an (idempotent) PATCH over ``answers``; the caller checks what happened on the wire."""
    wire = Wire(*answers)
    with wire.client(max_attempts) as client:
        client.update_recording("rec-1", {"notes": "n"})
    return wire


# -- retries and error mapping (wire level) -----------------------------------------------------

@pytest.mark.parametrize(("answer", "wait"), [
    (reply(429, {"type": "throttled_error", "detail": THROTTLED.format(40)}, {"Retry-After": "7"}), 7.0),
    (reply(429, {"type": "throttled_error", "detail": THROTTLED.format(4)}), 4.0),
    (reply(503, {"type": "server_error", "code": "database_unavailable", "detail": "db"}, {"Retry-After": "1"}), 1.0),
], ids=["429-header-wins", "429-seconds-in-detail", "503-retry-after"])
def test_the_servers_wait_is_honoured_exactly(answer, wait):
    wire = patch_with(answer, reply(201))
    assert wire.sleeps == [wait]
    assert len(wire.requests) == 2


@pytest.mark.parametrize(("answer", "wait"), [
    (reply(429, {"type": "throttled_error", "detail": THROTTLED.format(40)}), 40.0),
    (reply(503, {"type": "server_error", "detail": "db"}, {"Retry-After": "100"}), 100.0),
], ids=["429-40s", "503-100s"])
def test_a_long_server_wait_is_raised_for_the_caller_to_schedule_not_slept(answer, wait):
    wire = Wire(answer, reply(201))
    with wire.client() as client, pytest.raises((RateLimited, ServerUnavailable)) as err:
        client.update_recording("rec-1", {"notes": "n"})
    assert err.value.retry_after_s == wait
    assert wire.sleeps == [] and len(wire.requests) == 1


def test_no_retry_once_the_caller_stops_waiting():
    wire = Wire(reply(500, {"type": "server_error", "detail": "A server error occurred."}), reply(201))
    with wire.client(max_attempts=3) as client, pytest.raises(ServerUnavailable):
        waited: list[float] = []
        client.keep_retrying = lambda: not waited  # true until the first wait is over
        client._sleep = waited.append
        client.update_recording("rec-1", {"notes": "n"})
    assert len(wire.requests) == 1 and len(waited) == 1  # waited once, then did not send again


def test_5xx_is_retried_with_growing_backoff_then_raises_server_unavailable():
    wire = Wire(reply(500, {"type": "server_error", "detail": "A server error occurred."}))
    with wire.client(max_attempts=3) as client, pytest.raises(ServerUnavailable) as err:
        client.update_recording("rec-1", {"notes": "n"})
    assert err.value.status == 500
    assert len(wire.requests) == 3
    assert len(wire.sleeps) == 2
    assert 0.5 <= wire.sleeps[0] <= 1.0 and 1.0 <= wire.sleeps[1] <= 2.0


SCOPE_DETAIL = "API key missing required scope 'desktop_recording:write'"
AUTH_ERROR = "authentication_error"


@pytest.mark.parametrize(("status", "body", "error"), [
    (400, {"type": "validation_error", "code": "invalid_choice", "detail": "bad", "attr": "platform"},
     ValidationFailed),
    (401, {"detail": "Invalid token."}, CredentialsRejected),
    (403, {"type": AUTH_ERROR, "code": "not_authenticated", "detail": "No credentials."}, CredentialsRejected),
    (403, {"type": AUTH_ERROR, "code": "authentication_failed", "detail": "Invalid key."}, CredentialsRejected),
    (403, {"type": AUTH_ERROR, "code": "permission_denied", "detail": SCOPE_DETAIL}, MissingScope),
    (404, {"type": "invalid_request", "code": "not_found", "detail": "Not found."}, NotFound),
    (503, {"detail": "Recall.ai API key not configured"}, CannotCreateRecordings),
])
def test_errors_map_to_their_type_and_are_never_retried(status, body, error):
    wire = Wire(reply(status, body))
    with wire.client() as client, pytest.raises(ApiError) as err:
        client.create_recording()
    assert type(err.value) is error
    assert err.value.status == status
    assert len(wire.requests) == 1
    assert wire.sleeps == []


def test_missing_scope_names_the_scope():
    wire = Wire(reply(403, {"type": AUTH_ERROR, "code": "permission_denied", "detail": SCOPE_DETAIL}))
    with wire.client() as client, pytest.raises(MissingScope) as err:
        client.create_recording()
    assert err.value.scope == "desktop_recording:write"


def test_non_json_502_from_a_proxy_is_a_retryable_server_error():
    wire = Wire(reply(502, "<html><body>502 Bad Gateway</body></html>", {"Content-Type": "text/html"}))
    with wire.client(max_attempts=2) as client, pytest.raises(ServerUnavailable) as err:
        client.update_recording("rec-1", {"notes": "n"})
    assert err.value.status == 502
    assert "502" in str(err.value)
    assert len(wire.requests) == 2


def test_connection_errors_are_retried_then_raise_network_error():
    wire = patch_with(httpx.ConnectError("connection refused"), httpx.ReadTimeout("slow"), reply(201))
    assert len(wire.requests) == 3
    failing = Wire(httpx.ConnectError("connection refused"))
    with failing.client(max_attempts=2) as client, pytest.raises(NetworkError) as err:
        client.update_recording("rec-1", {"notes": "n"})
    assert "us.posthog.com" in str(err.value)
    assert len(failing.requests) == 2


@pytest.mark.parametrize("failure", [httpx.ConnectError("connection refused"), httpx.ConnectTimeout("no route"),
                                     httpx.ConnectError("[Errno -2] Name or service not known")],
                         ids=["refused", "connect-timeout", "no-name"])
def test_a_host_nothing_answers_at_is_told_apart_from_a_failed_request(failure):
    """The sync waits for the host as a whole then, not for each recording in turn."""
    with Wire(failure).client(max_attempts=2) as client, pytest.raises(Unreachable) as err:
        client.update_recording("rec-1", {"notes": "n"})
    assert str(err.value).startswith("Cannot reach PostHog at https://us.posthog.com")
    for other in (httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("dropped"), reply(502, "Bad Gateway")):
        with Wire(other).client(max_attempts=1) as client, pytest.raises(ApiError) as err:
            client.update_recording("rec-1", {"notes": "n"})
        assert not isinstance(err.value, Unreachable)


@pytest.mark.parametrize(("failure", "unsure"), [
    (httpx.ReadTimeout("slow"), True),
    (httpx.RemoteProtocolError("Server disconnected without sending a response."), True),
    (reply(504, "Gateway Time-out"), True),
    (reply(502, "Bad Gateway"), True),
    (httpx.ConnectError("connection refused"), False),
    (httpx.ConnectTimeout("no route"), False),
    (reply(500, {"type": "server_error", "detail": "boom"}), False),
    (reply(503, {"type": "server_error", "code": "database_unavailable", "detail": "db"}), False),
], ids=["read-timeout", "dropped", "504", "502", "refused", "connect-timeout", "500", "503"])
def test_an_append_left_without_an_answer_is_told_as_such(failure, unsure):
    """After these the append may still be done on the server, late: the sync must know."""
    told: list[str] = []
    wire = Wire(failure, reply(200))
    with wire.client() as client:
        client.append_segments(RID, [WireSegment(1.0, "Ann", "hi", 0.9)], on_unanswered=lambda: told.append("x"))
    assert told == (["x"] if unsure else [])
    assert len(wire.requests) == 2


def test_every_attempt_waits_for_the_rate_budget():
    clock = FakeClock()
    wire = Wire(reply(500, {"detail": "boom"}), reply(500, {"detail": "boom"}), reply(201))
    with wire.client(max_attempts=3, budget=RateBudget(2, clock=clock, sleep=clock.sleep)) as client:
        client.update_recording("rec-1", {"notes": "n"})
    assert clock.slept == [60.0]  # the third attempt in the same minute waits for the window


# -- hosts, segments, patches --------------------------------------------------------------------

@pytest.mark.parametrize("host", ["https://us.posthog.com/", "http://localhost:8000", "http://127.0.0.1:8010",
                                  " https://posthog.example.org "])
def test_validate_host_accepts_https_and_local_http(host):
    assert validate_host(host) == host.strip().rstrip("/")


@pytest.mark.parametrize("host", ["http://example.com", "http://localhost.example.com", "ftp://us.posthog.com",
                                  "us.posthog.com", "https://"])
def test_validate_host_rejects_everything_else(host):
    with pytest.raises(InvalidHost):
        validate_host(host)


def test_append_segments_dedupes_timestamps_within_a_batch_and_sends_only_finals():
    wire = Wire(reply(200))
    segs = [WireSegment(1000.0, "A", "one", 0.9), WireSegment(2000.0, "B", "two", None),
            WireSegment(1000.0, "A", "one again", 0.9)]
    with wire.client() as client:
        client.append_segments(RID, segs)
    assert wire.requests[0].url.path == f"/api/environments/1/desktop_recordings/{RID}/append_segments/"
    sent = wire.body()["segments"]
    assert [s["timestamp"] for s in sent] == [1000.0, 2000.0]
    assert all(s["is_final"] is True for s in sent)


def test_append_segments_refuses_an_empty_batch_without_a_request():
    wire = Wire(reply(200))
    with wire.client() as client, pytest.raises(ValueError, match="at least one"):
        client.append_segments(RID, [])
    assert wire.requests == []


def test_clean_patch_fixes_or_drops_bad_fields():
    body, problems = clean_patch({"meeting_title": "t" * 300, "meeting_url": "not a url", "duration_seconds": 12.0,
                                  "participants": ["Ann", " Ann ", "", "Bob"], "status": "done"})
    assert body == {"meeting_title": "t" * TITLE_MAX, "duration_seconds": 12, "participants": ["Ann", "Bob"]}
    assert type(body["duration_seconds"]) is int
    assert len(problems) == 3  # title truncated, url dropped, status dropped


def test_update_recording_sends_the_cleaned_patch():
    wire = Wire(reply(200))
    with wire.client() as client:
        client.update_recording(RID, {"meeting_url": "zoom.us/j/1", "duration_seconds": 61.6, "notes": "n"})
    assert wire.requests[0].method == "PATCH"
    assert wire.body() == {"duration_seconds": 62, "notes": "n"}


# -- against the real test server ----------------------------------------------------------------

@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def connect(server, sleeps):
    made: list[PostHogClient] = []

    def connect(key: str = WRITE_KEY, project: str | int = 1, max_attempts: int = 3) -> PostHogClient:
        policy = RetryPolicy(max_attempts=max_attempts, base_delay_s=1.0, max_delay_s=30.0)
        made.append(PostHogClient(server.url, key, project, retry=policy, budget=RateBudget(10_000),
                                  sleep=sleeps.append))
        return made[-1]

    yield connect
    for client in made:
        client.close()


def requests_to(server, method: str, fragment: str = "") -> list:
    return [r for r in server.state.requests if r[0] == method and fragment in r[1]]


def test_create_patch_append_get_roundtrip(connect):
    client = connect()
    rec = client.create_recording("zoom")
    assert (rec.platform, rec.status, rec.transcript_text) == ("zoom", "recording", "")
    client.update_recording(rec.id, {"meeting_title": "Standup", "participants": ["Ann", "Bob"]})
    client.append_segments(rec.id, [WireSegment(1500, "Ann", "Hello", 0.9), WireSegment(2500, "Bob", "there", None)])
    got = client.get_recording(rec.id)
    assert (got.meeting_title, got.participants) == ("Standup", ["Ann", "Bob"])
    assert got.transcript_text == "Hello there"
    assert [s["timestamp"] for s in got.transcript_segments] == [1500.0, 2500.0]


def test_list_follows_next_through_every_page(server, connect):
    client = connect()
    ids = sorted(client.create_recording().id for _ in range(7))
    assert sorted(r.id for r in client.list_recordings(page_size=3)) == ids
    assert len(requests_to(server, "GET", "desktop_recordings")) == 3  # offsets 0, 3 and 6


def test_list_pages_go_to_the_configured_host_whatever_next_names(server, connect):
    """A proxy in front of the instance can build ``next`` with plain http or its inner host
    name: the key must go only where the user configured, so only the link's query is used."""
    client = connect()
    ids = sorted(client.create_recording().id for _ in range(5))
    server.state.faults.link_base = "http://127.0.0.1:9/inner/api/environments/1/desktop_recordings/"
    assert sorted(r.id for r in client.list_recordings(page_size=2)) == ids
    assert len(requests_to(server, "GET", "desktop_recordings")) == 3


def test_list_filters_by_status_platform_and_search(connect):
    client = connect()
    zoom, meet, plain = (client.create_recording(p) for p in ("zoom", "meet", "desktop_audio"))
    client.update_recording(meet.id, {"status": "ready"})
    client.append_segments(plain.id, [WireSegment(0, None, "Quarterly Budget review", None)])
    assert [r.id for r in client.list_recordings(status="ready")] == [meet.id]
    assert [r.id for r in client.list_recordings(platform="zoom")] == [zoom.id]
    assert [r.id for r in client.list_recordings(search="budget")] == [plain.id]


def test_server_dedupes_appends_by_timestamp(connect):
    client = connect()
    rid = client.create_recording().id
    batch = [WireSegment(1000, None, "first", None), WireSegment(2000, None, "second", None)]
    client.append_segments(rid, batch)
    client.append_segments(rid, batch)  # a retried batch is harmless
    client.append_segments(rid, [WireSegment(2000, None, "changed", None), WireSegment(3000, None, "third", None)])
    got = client.get_recording(rid)
    assert [s["text"] for s in got.transcript_segments] == ["first", "second", "third"]


def test_read_only_key_can_list_but_not_create(connect):
    rid = connect().create_recording().id
    reader = connect(READ_KEY)
    assert [r.id for r in reader.list_recordings()] == [rid]
    with pytest.raises(MissingScope) as err:
        reader.create_recording()
    assert err.value.scope == "desktop_recording:write"


def test_probe_write_scope_tells_write_from_read_and_creates_nothing(server, connect):
    assert connect().probe_write_scope() is True
    assert connect(READ_KEY).probe_write_scope() is False
    assert server.state.recordings == {}
    assert requests_to(server, "POST") == []


def test_invalid_key_is_rejected(connect):
    client = connect("phx_not_a_key")
    with pytest.raises(CredentialsRejected, match="authentication_failed"):
        client.create_recording()
    with pytest.raises(CredentialsRejected):
        client.probe_write_scope()


def test_resolve_project_pins_current_to_the_team_id(server, connect):
    client = connect(project="@current")
    assert client.resolve_project() == 1
    client.create_recording()
    assert requests_to(server, "POST")[-1][1] == "/api/environments/1/desktop_recordings/"


@pytest.mark.parametrize(("header", "seconds"), [(True, 2), (False, 3)])
def test_server_throttling_is_waited_out(server, connect, sleeps, header, seconds):
    server.state.faults.throttle_next, server.state.faults.throttle_seconds = 1, seconds
    server.state.faults.throttle_header = header
    connect().create_recording()
    assert sleeps == [float(seconds)]
    assert len(server.state.recordings) == 1


def test_server_failures_and_dropped_connections_are_retried(server, connect, sleeps):
    client = connect(max_attempts=4)
    rid = client.create_recording().id
    server.state.faults.fail_next, server.state.faults.drop_next = 2, 1
    assert client.update_recording(rid, {"notes": "kept"}).raw["notes"] == "kept"
    assert len(requests_to(server, "PATCH")) == 4 and len(sleeps) == 3
    server.state.faults.fail_next = 10
    with pytest.raises(ServerUnavailable):
        next(client.list_recordings())


def test_create_is_not_retried_when_it_may_have_happened(server, connect, sleeps):
    """A 5xx or a lost answer may hide a created recording: the caller decides (orphan adoption)."""
    client = connect(max_attempts=4)
    server.state.faults.fail_next = 1
    with pytest.raises(ServerUnavailable):
        client.create_recording()
    server.state.faults.drop_next = 1
    with pytest.raises(NetworkError):
        client.create_recording()
    assert len(requests_to(server, "POST")) == 2 and sleeps == []
    server.state.faults.throttle_next = 1  # a 429 certainly created nothing: retried
    client.create_recording()
    assert len(server.state.recordings) == 1

def test_throttle_outlasting_the_attempts_raises_rate_limited(server, connect):
    server.state.faults.throttle_next = 5
    with pytest.raises(RateLimited) as err:
        connect(max_attempts=2).create_recording()
    assert err.value.retry_after_s == 1.0


def test_create_unavailable_raises_cannot_create_once(server, connect):
    server.state.faults.create_unavailable = True
    with pytest.raises(CannotCreateRecordings):
        connect().create_recording()
    assert len(requests_to(server, "POST")) == 1
    assert server.state.recordings == {}


# -- RateBudget ----------------------------------------------------------------------------------

def test_rate_budget_waits_until_the_window_frees():
    clock = FakeClock()
    budget = RateBudget(3, clock=clock, sleep=clock.sleep)
    for t in (0.0, 10.0, 20.0):
        clock.now = t
        budget.acquire()
    assert clock.slept == []
    clock.now = 30.0
    budget.acquire()  # 4th within 60 s: waits until the one at t=0 leaves the window
    assert clock.slept == [30.0] and clock.now == 60.0
    budget.acquire()  # window is now (10, 20, 60): waits for t=10 to leave
    assert clock.slept == [30.0, 10.0]
