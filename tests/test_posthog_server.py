"""The local PostHog test server is faithful to shared/posthog_api.md (plain HTTP, no client code)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.conftest import READ_KEY, WRITE_KEY

BASE = "/api/environments/1/desktop_recordings/"
ENVELOPE = {"type", "code", "detail", "attr"}


@pytest.fixture
def http(server):
    with httpx.Client(base_url=server.url) as client:
        yield client


def call(http: httpx.Client, method: str, path: str, key: str | None = WRITE_KEY, **kwargs) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return http.request(method, path, headers=headers, **kwargs)


def create(http: httpx.Client, **body) -> dict:
    response = call(http, "POST", BASE, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def error_of(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == ENVELOPE
    return body


def test_auth_is_checked_before_scope_before_lookup(http):
    missing = f"{BASE}{uuid.uuid4()}/"
    patch = {"notes": "x"}
    no_key = error_of(call(http, "PATCH", missing, key=None, json=patch), 403)
    assert (no_key["type"], no_key["code"]) == ("authentication_error", "not_authenticated")
    bad_key = error_of(call(http, "PATCH", missing, key="phx_nope", json=patch), 403)
    assert bad_key["code"] == "authentication_failed"
    assert bad_key["detail"] == "Personal API key found in request Authorization header is invalid."
    read_key = error_of(call(http, "PATCH", missing, key=READ_KEY, json=patch), 403)
    assert read_key["code"] == "permission_denied"
    assert read_key["detail"] == "API key missing required scope 'desktop_recording:write'"
    lookup = error_of(call(http, "PATCH", missing, json=patch), 404)
    assert (lookup["type"], lookup["code"], lookup["attr"]) == ("invalid_request", "not_found", None)


def test_read_key_may_list_and_retrieve(http):
    rid = create(http)["id"]
    assert call(http, "GET", BASE, key=READ_KEY).json()["count"] == 1
    assert call(http, "GET", f"{BASE}{rid}/", key=READ_KEY).json()["id"] == rid


def test_create_defaults_and_ignores_other_keys(http):
    rec = create(http, status="ready", meeting_title="ignored")
    assert (rec["platform"], rec["status"], rec["meeting_title"]) == ("desktop_audio", "recording", None)
    assert rec["upload_token"] and rec["transcript_text"] == "" and rec["completed_at"] is None
    bad = error_of(call(http, "POST", BASE, json={"platform": "webex"}), 400)
    assert (bad["type"], bad["code"], bad["attr"]) == ("validation_error", "invalid_choice", "platform")


def test_create_without_recall_key_is_a_bare_503(server, http):
    server.state.faults.create_unavailable = True
    response = call(http, "POST", BASE, json={})
    assert response.status_code == 503
    assert response.json() == {"detail": "Recall.ai API key not configured"}


@pytest.mark.parametrize(
    ("field", "bad", "code", "good", "stored"),
    [
        ("duration_seconds", 12.5, "invalid", 12.0, 12),
        ("participants", [{"name": "Ann"}], "invalid", ["Ann", "Bob"], ["Ann", "Bob"]),
        ("meeting_title", "t" * 256, "max_length", "t" * 255, "t" * 255),
        ("meeting_url", "not a url", "invalid", "https://zoom.us/j/1", "https://zoom.us/j/1"),
        ("status", "done", "invalid_choice", "ready", "ready"),
    ],
)
def test_patch_validates_like_the_serializer(http, field, bad, code, good, stored):
    url = f"{BASE}{create(http)['id']}/"
    error = error_of(call(http, "PATCH", url, json={field: bad}), 400)
    assert (error["type"], error["code"], error["attr"]) == ("validation_error", code, field)
    ok = call(http, "PATCH", url, json={field: good})
    assert ok.status_code == 200 and ok.json()[field] == stored


def test_patch_ignores_read_only_fields(http):
    rec = create(http)
    changed = call(http, "PATCH", f"{BASE}{rec['id']}/", json={"transcript_text": "forged", "team": 9}).json()
    assert (changed["transcript_text"], changed["team"]) == ("", 1)


def test_append_segments_rejects_empty_and_blank_and_stores_nothing(http):
    url = f"{BASE}{create(http)['id']}/append_segments/"
    empty = error_of(call(http, "POST", url, json={"segments": []}), 400)
    assert (empty["code"], empty["attr"]) == ("min_length", "segments")
    blank = error_of(call(http, "POST", url, json={"segments": [{"timestamp": 1, "text": "  "}]}), 400)
    assert (blank["code"], blank["attr"]) == ("blank", "segments__0__text")
    second = error_of(call(http, "POST", url, json={"segments": [{"text": "ok"}, {"timestamp": 2}]}), 400)
    assert (second["code"], second["attr"]) == ("required", "segments__1__text")
    assert call(http, "GET", url.removesuffix("append_segments/")).json()["transcript_segments"] == []


def test_append_segments_dedupes_by_timestamp_exactly_like_posthog(http):
    url = f"{BASE}{create(http)['id']}/append_segments/"

    def append(*segments: dict) -> dict:
        response = call(http, "POST", url, json={"segments": list(segments)})
        assert response.status_code == 200, response.text
        return response.json()

    rec = append(
        {"timestamp": 1500, "text": " Hello ", "speaker": "Ann", "extra": 1}, {"timestamp": 2500, "text": "you"}
    )
    assert rec["transcript_text"] == "Hello you"
    assert rec["transcript_segments"][0] == {
        "timestamp": 1500.0,
        "speaker": "Ann",
        "text": "Hello",
        "confidence": None,
        "is_final": None,
    }
    rec = append({"timestamp": 2500, "text": "changed"}, {"timestamp": 3500, "text": "all"})
    assert rec["transcript_text"] == "Hello you all"  # a stored timestamp is silently dropped
    rec = append({"timestamp": 4500, "text": "twice"}, {"timestamp": 4500, "text": "twice"})
    assert rec["transcript_text"].endswith("all twice twice")  # duplicates inside one batch are both kept
    rec = append({"timestamp": None, "text": "null"})
    rec = append({"timestamp": None, "text": "null"})
    assert rec["transcript_text"].endswith("null null")  # null timestamps duplicate on retry


def test_put_requires_platform(http):
    url = f"{BASE}{create(http)['id']}/"
    error = error_of(call(http, "PUT", url, json={"meeting_title": "x"}), 400)
    assert (error["code"], error["attr"]) == ("required", "platform")
    replaced = call(http, "PUT", url, json={"platform": "meet", "meeting_title": "x"})
    assert replaced.status_code == 200 and replaced.json()["platform"] == "meet"


def test_delete_answers_204_with_an_empty_body(http):
    url = f"{BASE}{create(http)['id']}/"
    deleted = call(http, "DELETE", url)
    assert deleted.status_code == 204 and deleted.content == b""
    assert error_of(call(http, "GET", url), 404)["code"] == "not_found"


@pytest.mark.parametrize("project", ["3", "default", "1abc"])
def test_unknown_project_is_not_found(http, project):
    error = error_of(call(http, "GET", f"/api/environments/{project}/desktop_recordings/"), 404)
    assert error["detail"] == "Project not found."


def test_a_recording_belongs_to_its_project_and_current_follows_the_users_switch(server, http):
    rid = call(http, "POST", "/api/environments/@current/desktop_recordings/", json={}).json()["id"]
    assert call(http, "GET", f"/api/environments/1/desktop_recordings/{rid}/").json()["team"] == 1
    error_of(call(http, "GET", f"/api/environments/2/desktop_recordings/{rid}/"), 404)
    server.state.team_id = 2  # the user switched project in the web app
    error_of(call(http, "GET", f"/api/environments/@current/desktop_recordings/{rid}/"), 404)
    assert call(http, "GET", "/api/environments/@current/desktop_recordings/").json()["count"] == 0
    assert call(http, "GET", f"/api/environments/1/desktop_recordings/{rid}/").status_code == 200


def test_both_prefixes_current_and_optional_trailing_slash(http):
    rid = call(http, "POST", "/api/projects/1/desktop_recordings", json={}).json()["id"]
    for path in (
        f"/api/environments/@current/desktop_recordings/{rid}",
        f"/api/projects/@current/desktop_recordings/{rid}/",
        f"{BASE}{rid}",
    ):
        response = call(http, "GET", path)
        assert response.status_code == 200 and response.json()["id"] == rid, path


def test_list_paginates_with_absolute_urls_newest_first(server, http):
    ids = [create(http)["id"] for _ in range(5)]
    first = call(http, "GET", BASE, params={"limit": 2}).json()
    assert first["count"] == 5 and first["previous"] is None
    assert first["next"].startswith(f"{server.url}{BASE}?") and "offset=2" in first["next"]
    assert [r["id"] for r in first["results"]] == ids[::-1][:2]
    last = call(http, "GET", BASE, params={"limit": 2, "offset": 4}).json()
    assert last["next"] is None and "offset=2" in last["previous"]
    assert [r["id"] for r in last["results"]] == [ids[0]]


def test_users_me_gives_the_team_id(http):
    me = call(http, "GET", "/api/users/@me/")
    assert me.status_code == 200 and me.json()["team"]["id"] == 1


def test_throttle_without_header_names_the_wait_in_the_detail(server, http):
    server.state.faults.throttle_next, server.state.faults.throttle_seconds = 1, 4
    server.state.faults.throttle_header = False
    throttled = call(http, "GET", BASE)
    assert throttled.status_code == 429 and "Retry-After" not in throttled.headers
    assert error_of(throttled, 429)["detail"] == "Request was throttled. Expected available in 4 seconds."
    assert call(http, "GET", BASE).status_code == 200
