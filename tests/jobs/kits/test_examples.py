"""The example site's jobs as shipped, end to end: trigger through the API, a real worker runs them, the
artifacts are downloaded through the API and checked."""

from __future__ import annotations

import io
import json
import sqlite3
import sys
from datetime import date

import httpx
import pandas as pd

from tests.jobs.results.helpers import finished, trigger

from .conftest import REPO

REPORT = REPO / "netlify" / "functions" / "daily-report-background"
ORDERS = REPO / "netlify" / "functions" / "transform-background" / "data" / "orders.csv"


def sample_sales(first: str, last: str) -> pd.DataFrame:
    """The example's own sample generator, imported from the function folder as the worker does."""
    sys.path.insert(0, str(REPORT))
    try:
        from sample import sales_between
    finally:
        sys.path.remove(str(REPORT))
    return sales_between(date.fromisoformat(first), date.fromisoformat(last))


def worker_with(start_worker, runtime, **environment: str) -> None:
    """A worker whose functions see ``environment`` (where the examples read their data from)."""
    from tests.support.procs import wait_for

    start_worker(extra_env=environment)
    wait_for(lambda: runtime.client.zcard(runtime.store.keys.workers), timeout=30, message="worker heartbeat")


def run_via_api(client, name: str, payload: dict) -> dict:
    response = client.post(f"/api/functions/{name}/runs", json=payload)
    assert response.status_code == 202, response.text
    return finished(client, response.json()["id"], timeout=90)


def test_daily_report_for_any_day_with_xlsx(client, worker):
    run = run_via_api(client, "daily-report-background", {"day": "2031-07-15"})
    assert run["status"] == "succeeded", run["error"]
    result = run["result"]
    assert result["day"] == "2031-07-15" and result["period"] == ["2031-06-16", "2031-07-15"]
    sales = sample_sales("2031-05-17", "2031-07-15")
    last_30 = sales[sales["date"] >= "2031-06-16"]
    assert result["rows"] == len(sales) and result["orders"] == len(last_30)
    assert result["revenue"] == round(last_30["revenue"].sum(), 2)
    names = {a["name"].removeprefix("2031-07-15/") for a in run["artifacts"]}
    tables = {f"tables/{t}.{f}" for t in ("by-region", "products") for f in ("csv", "parquet")}
    assert names == {"report.html", "report.xlsx", *tables}

    page = client.get("/api/functions/daily-report-background/latest/artifacts/2031-07-15/report.html")
    assert page.status_code == 200 and page.headers["x-backburner-run-id"] == run["id"]
    html = page.text
    assert "Sales report" in html and html.count("<svg") >= 3  # three charts, inline
    outside = html.replace("http://www.w3.org/", "")  # SVG namespaces are names, not fetches
    assert "http://" not in outside and "https://" not in outside  # self-contained: nothing to fetch
    files = f"/api/runs/{run['id']}/artifacts/2031-07-15"
    regions = pd.read_csv(io.BytesIO(client.get(f"{files}/tables/by-region.csv").content))
    expected = last_30.groupby("region")["revenue"].sum()
    assert dict(zip(regions["region"], regions["revenue"].round(2), strict=True)) == expected.round(2).to_dict()
    workbook = pd.read_excel(io.BytesIO(client.get(f"{files}/report.xlsx").content), sheet_name=None)
    assert len(workbook) == 2 and sum(len(sheet) for sheet in workbook.values()) > 4

    again = run_via_api(client, "daily-report-background", {"day": "2031-07-15"})
    assert again["result"] == result  # generated deterministically


def test_a_day_without_data_fails_at_once_saying_so(client, start_worker, runtime, tmp_path):
    db = tmp_path / "sales.db"
    with sqlite3.connect(db) as conn:
        sample_sales("2026-01-01", "2026-03-31").to_sql("sales", conn, index=False)
    query = "SELECT * FROM sales WHERE region = 'East'"
    worker_with(start_worker, runtime, SALES_DB=f"sqlite:///{db}", SALES_QUERY=query)
    payload = {"day": "2026-02-28"}
    run = run_via_api(client, "daily-report-background", payload)
    assert run["status"] == "succeeded", run["error"]
    assert list(run["result"]["regions"]) == ["East"] and run["result"]["period"] == ["2026-01-30", "2026-02-28"]
    assert "sales.db" in client.get(f"/api/runs/{run['id']}/artifacts/2026-02-28/report.html").text

    missing = run_via_api(client, "daily-report-background", {**payload, "day": "2026-05-04"})
    assert missing["status"] == "failed" and missing["attempt"] == 1  # NonRetriable: no retry for a missing day
    assert missing["error"]["type"] == "NonRetriable"
    assert "No sales data for 2026-05-04" in missing["error"]["message"]
    assert "covers 2026-01-01 to 2026-03-31" in missing["error"]["message"]


def test_data_that_is_not_sales_data_fails_at_once_naming_what_is_wrong(client, start_worker, runtime, tmp_path):
    source = tmp_path / "orders.csv"
    sample_sales("2026-02-01", "2026-02-28").drop(columns=["units"]).to_csv(source, index=False)
    worker_with(start_worker, runtime, SALES_SOURCE=str(source))
    cases = [
        ({"day": "2026-02-28"}, "orders.csv: the data lacks the column(s) units"),
        ([1, 2], "the payload must be a JSON object"),
        # The function's URL is public: no caller chooses what the worker reads.
        ({"db": "sqlite://", "query": "VACUUM INTO '/tmp/x.db'"}, "the payload names db, query, but where the data"),
    ]
    for payload, words in cases:
        run = run_via_api(client, "daily-report-background", payload)  # type: ignore[arg-type]
        assert run["status"] == "failed" and run["attempt"] == 1, run  # NonRetriable: the same data fails again
        assert run["error"]["type"] == "NonRetriable" and words in run["error"]["message"]


def test_a_schedule_tick_builds_the_report_of_its_day_and_a_backfill_builds_a_week(client, worker):
    week = client.post(
        "/api/schedules/daily-report-background/backfill", json={"from": "2026-02-01", "to": "2026-02-08"}
    )
    assert week.status_code == 202, week.text
    runs = [finished(client, run["id"], timeout=120) for run in week.json()["runs"]]
    assert [run["result"]["day"] for run in runs] == [f"2026-02-0{d}" for d in range(1, 8)]
    assert all(run["trigger"] == "backfill" and run["status"] == "succeeded" for run in runs)
    # The report of a given day, without knowing run ids:
    page = client.get("/api/functions/daily-report-background/latest/artifacts/2026-02-03/report.html")
    assert page.headers["x-backburner-run-id"] == runs[2]["id"]

    now = client.post("/api/schedules/daily-report-background/trigger")
    assert now.status_code == 202
    ticked = finished(client, now.json()["id"], timeout=90)
    assert ticked["status"] == "succeeded", ticked["error"]
    assert ticked["result"]["day"] == ticked["scheduled_for"][:10]  # the tick's own day (UTC)


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

    # The function's URL is public: no caller chooses what the worker reads (its environment does).
    refused = run_via_api(client, "transform-background", {"source": "/etc/passwd"})
    assert refused["status"] == "failed" and refused["attempt"] == 1 and refused["error"]["type"] == "NonRetriable"
    assert "the source is set in the function's environment (ORDERS_SOURCE)" in refused["error"]["message"]
    # Nor how much work one call makes: a fan-out or chunk size out of bounds fails at once, saying so.
    for payload, said in (
        ({"children": 100_000}, '"children" must be a whole number from 1 to 32, not 100000'),
        ({"chunk_rows": "x"}, "\"chunk_rows\" must be a whole number from 10 to 100000, not 'x'"),
    ):
        refused = run_via_api(client, "transform-background", payload)
        assert refused["status"] == "failed" and refused["attempt"] == 1, refused
        assert refused["error"]["message"] == said


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
