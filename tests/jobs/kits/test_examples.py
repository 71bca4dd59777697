"""The example site's jobs as shipped, end to end: trigger through the API, a real worker runs them, the
artifacts are downloaded through the API and checked."""

from __future__ import annotations

import io
import json
import sqlite3

import httpx
import pandas as pd

from tests.jobs.results.helpers import finished, trigger

from .conftest import REPO

SALES = REPO / "netlify" / "functions" / "daily-report-background" / "data" / "sales.csv"
ORDERS = REPO / "netlify" / "functions" / "transform-background" / "data" / "orders.csv"


def run_via_api(client, name: str, payload: dict) -> dict:
    response = client.post(f"/api/functions/{name}/runs", json=payload)
    assert response.status_code == 202, response.text
    return finished(client, response.json()["id"], timeout=90)


def test_daily_report_from_the_shipped_sample_data(client, worker):
    run = run_via_api(client, "daily-report-background", {})
    assert run["status"] == "succeeded", run["error"]
    sales = pd.read_csv(SALES, parse_dates=["date"])
    last_30 = sales[sales["date"] > sales["date"].max() - pd.Timedelta(days=30)]
    result = run["result"]
    assert result["rows"] == len(sales) == 3000
    assert result["period"] == ["2026-03-02", "2026-03-31"]
    assert result["revenue"] == round(last_30["revenue"].sum(), 2) and result["orders"] == len(last_30)
    names = {a["name"] for a in run["artifacts"]}
    assert {"report.html", "tables/by-region.csv", "tables/by-region.parquet", "tables/products.csv"} <= names

    page = client.get("/api/functions/daily-report-background/latest/artifacts/report.html")
    assert page.status_code == 200 and page.headers["x-backburner-run-id"] == run["id"]
    html = page.text
    assert "Sales report" in html and html.count("<svg") >= 3  # three charts, inline
    outside = html.replace("http://www.w3.org/", "")  # SVG namespaces are names, not fetches
    assert "http://" not in outside and "https://" not in outside  # self-contained: nothing to fetch
    regions = pd.read_csv(io.BytesIO(client.get(f"/api/runs/{run['id']}/artifacts/tables/by-region.csv").content))
    expected = last_30.groupby("region")["revenue"].sum()
    assert dict(zip(regions["region"], regions["revenue"].round(2), strict=True)) == expected.round(2).to_dict()


def test_daily_report_from_a_sqlite_database(client, worker, tmp_path):
    db = tmp_path / "sales.db"
    with sqlite3.connect(db) as conn:
        pd.read_csv(SALES).to_sql("sales", conn, index=False)
    payload = {"db": f"sqlite:///{db}", "query": "SELECT * FROM sales WHERE region = 'East'", "day": "2026-02-28"}
    run = run_via_api(client, "daily-report-background", payload)
    assert run["status"] == "succeeded", run["error"]
    assert list(run["result"]["regions"]) == ["East"]
    assert run["result"]["period"] == ["2026-01-30", "2026-02-28"]
    html = client.get(f"/api/runs/{run['id']}/artifacts/report.html").text
    assert "sales.db" in html


def test_a_schedule_tick_body_builds_the_default_report(client, worker):
    run = run_via_api(client, "daily-report-background", {"next_run": "2026-04-01T00:00:00Z"})
    assert run["status"] == "succeeded" and run["result"]["rows"] == 3000


def test_transform_normalises_into_partitioned_parquet_with_rejects(client, worker):
    run = run_via_api(client, "transform-background", {})
    assert run["status"] == "succeeded", run["error"]
    result = run["result"]
    raw = pd.read_csv(ORDERS, dtype=str, keep_default_na=False)
    assert result["rows_in"] == len(raw) == 2000 and result["chunks"] == 4
    assert result["rows_out"] + result["rows_rejected"] == 2000 and 20 < result["rows_rejected"] < 100

    names = [a["name"] for a in run["artifacts"]]
    folders = sorted({n.split("/")[1] for n in names if n.endswith(".parquet")})
    assert folders == [f"country={c}" for c in ("DE", "ES", "FR", "IT", "NL", "PL")]
    frames = []
    for artifact in run["artifacts"]:
        if artifact["name"].endswith(".parquet"):
            frame = pd.read_parquet(io.BytesIO(client.get(artifact["url"]).content))
            frames.append(frame.assign(country=artifact["name"].split("/")[1].split("=")[1]))
    output = pd.concat(frames)
    assert len(output) == result["rows_out"] and output["order_id"].is_unique
    assert output["order_id"].str.fullmatch(r"O-\d{6}").all()
    assert (output["customer_email"] == output["customer_email"].str.strip().str.lower()).all()
    assert str(output["ordered_at"].dtype) == "datetime64[us, UTC]" and output["amount"].dtype == "float64"

    rejects = client.get(f"/api/runs/{run['id']}/artifacts/rejects.jsonl").text.splitlines()
    assert len(rejects) == result["rows_rejected"]
    reasons = {json.loads(line)["reason"].split(":")[0] for line in rejects}
    assert reasons == {"missing order_id", "amount is not a number", "unparseable date", "unknown country"}
    kept = set(output["order_id"].str.lower())
    rejected = {json.loads(line)["order_id"] for line in rejects}
    assert kept.isdisjoint(rejected) and len(kept) + len(rejects) == 2000


def test_transform_fan_out_gives_the_same_output(client, start_worker, runtime):
    from tests.support.procs import wait_for

    start_worker(threads=3)
    wait_for(lambda: runtime.client.zcard(runtime.store.keys.workers), timeout=30, message="worker heartbeat")
    single = run_via_api(client, "transform-background", {})
    spread = run_via_api(client, "transform-background", {"children": 3})
    assert spread["status"] == "succeeded", spread["error"]
    keys = ("rows_in", "rows_out", "rows_rejected")
    assert [spread["result"][k] for k in keys] == [single["result"][k] for k in keys]
    assert len(spread["result"]["children"]) == 3
    a = client.get(f"/api/runs/{single['id']}/artifacts/rejects.jsonl").text
    b = client.get(f"/api/runs/{spread['id']}/artifacts/rejects.jsonl").text
    assert a == b  # slices in order, chunks in order


def test_aggregate_combines_the_local_sample_apis_and_remembers_etags(client, worker, live_api):
    direct = httpx.get(f"{live_api}/.netlify/functions/sample-api/orders?page=3")
    assert direct.status_code == 200 and len(direct.json()) == 5 and "link" not in direct.headers
    again = httpx.get(
        f"{live_api}/.netlify/functions/sample-api/orders?page=3", headers={"if-none-match": direct.headers["etag"]}
    )
    assert again.status_code == 304 and again.content == b""

    first = finished(client, trigger(client, "aggregate-background"), timeout=90)
    assert first["status"] == "succeeded", first["error"]
    sources = first["result"]["sources"]
    assert {n: s["records"] for n, s in sources.items()} == {"orders": 25, "customers": 12, "products": 8}
    assert {n: s["pages"] for n, s in sources.items()} == {"orders": 3, "customers": 3, "products": 3}
    assert first["result"]["failed"] == [] and first["result"]["records"] == 45
    combined = json.loads(client.get(f"/api/runs/{first['id']}/artifacts/combined.json").content)
    assert [o["order_id"] for o in combined["orders"]] == [f"SO-{n:04d}" for n in range(1, 26)]
    table = pd.read_parquet(io.BytesIO(client.get(f"/api/runs/{first['id']}/artifacts/combined.parquet").content))
    assert table["source"].value_counts().to_dict() == {"orders": 25, "customers": 12, "products": 8}
    orders = pd.read_csv(io.BytesIO(client.get(f"/api/runs/{first['id']}/artifacts/orders.csv").content))
    assert len(orders) == 25 and orders["customer_name"].notna().all() and (orders["revenue"] > 0).all()

    second = finished(client, trigger(client, "aggregate-background"), timeout=90)
    assert second["status"] == "succeeded", second["error"]
    # Every page was answered 304 and taken from the ETags remembered in Redis by the first run.
    assert {n: s["not_modified"] for n, s in second["result"]["sources"].items()} == {
        "orders": 3,
        "customers": 3,
        "products": 3,
    }
    second_json = json.loads(client.get(f"/api/runs/{second['id']}/artifacts/combined.json").content)
    assert second_json == combined


def test_aggregate_without_its_apis_records_the_failures_and_still_succeeds(client, worker):
    # No API server at BACKBURNER_URL: every source fails after its retries, and the policy is "continue".
    run = finished(client, trigger(client, "aggregate-background"), timeout=120)
    assert run["status"] == "succeeded", run["error"]
    assert run["result"]["failed"] == ["customers", "orders", "products"]
    assert all("ConnectError" in s["error"] for s in run["result"]["sources"].values())
