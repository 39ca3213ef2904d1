"""Research over the API (/api/v1/research/): CRUD, revisions, publish and unpublish, published notes,
search and track records, through the services the pages use. Another user's note is a 404; bad input a
problem+json 400 naming the field; writes need the trade scope."""

from __future__ import annotations

import pytest

from tests.api import more
from tests.api.more import patch, post, problem, results

api_a = more.api_a
api_b = more.api_b
read_only_a = more.read_only_a

URL = "/api/v1/research/notes/"
NOTE = {
    "title": "BTC reclaims 22k",
    "body": "Support held **twice**. <script>alert(1)</script>",
    "tags": ["breakout"],
    "symbols": ["BTC/USDT"],
    "direction": "long",
    "thesis_symbol": "BTC/USDT",
    "entry": "22100",
    "target": "24000",
    "stop": "21500",
    "horizon": "2030-03-31",
}


@pytest.fixture
def instruments(btc, btc_usdc):
    return {"BTC/USDT": btc, "BTC/USDC": btc_usdc}


def test_create_list_get_change_revisions_delete(api_a, instruments):
    created = post(api_a, URL, NOTE)
    assert created.status_code == 201, created.content
    note = created.json()
    assert note["thesis"] == {"direction": "long", "symbol": "BTC/USDT", "entry": "22100.00000000",
                              "target": "24000.00000000", "stop": "21500.00000000", "horizon": "2030-03-31"}
    assert "<strong>twice</strong>" in note["body_html"] and "<script>" not in note["body_html"]
    assert note["audience"] == "" and note["published_at"] is None
    assert [n["id"] for n in results(api_a.get(URL))] == [note["id"]]

    changed = patch(api_a, f"{URL}{note['id']}/", {"title": "BTC holds 22k"})
    assert changed.status_code == 200, changed.content
    assert (changed.json()["title"], changed.json()["tags"]) == ("BTC holds 22k", ["breakout"])
    revisions = results(api_a.get(f"{URL}{note['id']}/revisions/"))
    assert [(r["number"], r["title"]) for r in revisions] == [(2, "BTC holds 22k"), (1, "BTC reclaims 22k")]

    assert api_a.delete(f"{URL}{note['id']}/").status_code == 204
    assert api_a.get(f"{URL}{note['id']}/").status_code == 404


def test_bad_input_is_a_problem_naming_the_field(api_a, instruments):
    problem(post(api_a, URL, {**NOTE, "target": "100"}), 400, "target")
    problem(post(api_a, URL, {**NOTE, "entry": "abc"}), 400, "entry")
    problem(post(api_a, URL, {**NOTE, "symbols": ["NOPE/XYZ"]}), 400, "symbols")
    problem(post(api_a, URL, {"title": 5}), 400, "title")
    problem(post(api_a, URL, {**NOTE, "chart_symbol": "BTC/USDT", "chart_interval": "1h",
                              "chart_start": "2023-03-01T00:00:00Z", "chart_end": "2023-03-02T00:00:00Z"}),
            400, "chart_alt")
    assert results(api_a.get(URL)) == []


def test_another_users_note_is_a_404_everywhere(api_a, api_b, instruments):
    note = post(api_a, URL, NOTE).json()
    for method, url in (
        ("get", f"{URL}{note['id']}/"),
        ("get", f"{URL}{note['id']}/revisions/"),
        ("delete", f"{URL}{note['id']}/"),
        ("post", f"{URL}{note['id']}/publish/"),
        ("post", f"{URL}{note['id']}/unpublish/"),
        ("get", f"/api/v1/research/published/{note['id']}/"),
    ):
        response = getattr(api_b, method)(url, {"audience": "members"}, content_type="application/json") \
            if method == "post" else getattr(api_b, method)(url)
        assert response.status_code == 404, (method, url, response.status_code)
    assert patch(api_b, f"{URL}{note['id']}/", {"title": "mine now"}).status_code == 404
    assert results(api_b.get(URL)) == []
    assert api_a.get(f"{URL}{note['id']}/").json()["title"] == NOTE["title"]


def test_publish_search_read_and_unpublish(api_a, api_b, user_a, instruments):
    note = post(api_a, URL, NOTE).json()
    published = post(api_a, f"{URL}{note['id']}/publish/", {"audience": "members"})
    assert published.status_code == 200, published.content
    assert published.json()["audience"] == "members"

    rows = results(api_b.get("/api/v1/research/published/", {"symbol": "BTC-USDT"}))
    assert [(r["note_id"], r["title"], r["outcome"]) for r in rows] == [(note["id"], NOTE["title"], "open")]
    assert results(api_b.get("/api/v1/research/published/", {"tag": "other"})) == []
    hits = api_b.get("/api/v1/research/search/", {"q": "reclaims"}).json()["results"]
    assert [h["note_id"] for h in hits] == [note["id"]]
    assert hits[0]["snippet"].startswith("Support held twice.")  # the match is in the title
    assert "<script" not in hits[0]["snippet"]
    record = api_b.get(f"/api/v1/research/authors/{user_a.pk}/track-record/").json()
    assert (record["theses"], record["open"], record["hit_rate"]) == (1, 1, None)

    assert post(api_a, f"{URL}{note['id']}/unpublish/").status_code == 200
    assert api_b.get(f"/api/v1/research/published/{note['id']}/").status_code == 404
    assert api_b.get("/api/v1/research/search/", {"q": "reclaims"}).json()["results"] == []


def test_search_needs_a_query(api_a):
    problem(api_a.get("/api/v1/research/search/"), 400, "q")
    problem(api_a.get("/api/v1/research/search/", {"q": ""}), 400, "q")


def test_a_read_only_token_reads_but_cannot_write(read_only_a, api_a, instruments):
    note = post(api_a, URL, NOTE).json()
    assert read_only_a.get(URL).status_code == 200
    assert read_only_a.get("/api/v1/research/search/", {"q": "btc"}).status_code == 200
    assert post(read_only_a, URL, NOTE).status_code == 403
    assert post(read_only_a, f"{URL}{note['id']}/publish/", {"audience": "members"}).status_code == 403
