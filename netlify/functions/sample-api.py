"""A synchronous function playing three small JSON APIs, so aggregate-background works offline in `dev`.

    /.netlify/functions/sample-api/orders?page=2      pages linked by a Link header (rel="next")
    /.netlify/functions/sample-api/customers?cursor=  {"data": [...], "next_cursor": "..."}
    /.netlify/functions/sample-api/products?page=1    a list per page, empty after the last one

Every answer carries an ETag; a request with a matching If-None-Match gets 304 and no body.
"""

import hashlib
import json
import random

PER_PAGE = {"orders": 10, "customers": 5, "products": 4}


def _data():
    rng = random.Random(3)
    countries = ["DE", "FR", "NL"]
    customers = [{"id": f"C{n:03d}", "name": f"Customer {n}", "country": rng.choice(countries)} for n in range(1, 13)]
    catalogue = [("Espresso machine", 349.0), ("Grinder", 129.0), ("Kettle", 59.0), ("Beans 1kg", 24.5),
                 ("Beans 250g", 7.9), ("Cups", 32.0), ("Scale", 45.0), ("Filter papers", 4.5)]  # fmt: skip
    products = [{"sku": f"P-{n}", "title": title, "price": price} for n, (title, price) in enumerate(catalogue, 1)]
    orders = [
        {
            "order_id": f"SO-{n:04d}",
            "customer": rng.choice(customers)["id"],
            "sku": rng.choice(products)["sku"],
            "units": rng.randint(1, 5),
        }  # fmt: skip
        for n in range(1, 26)
    ]
    return {"orders": orders, "customers": customers, "products": products}


DATA = _data()


def _answer(event, status, payload, headers=None):
    body = json.dumps(payload, sort_keys=True)
    etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:20] + '"'
    headers = {"content-type": "application/json", "etag": etag, "cache-control": "no-cache", **(headers or {})}
    if status == 200 and etag in (event.get("headers") or {}).get("if-none-match", ""):
        return {"statusCode": 304, "headers": headers, "body": ""}
    return {"statusCode": status, "headers": headers, "body": body}


def handler(event, context):
    resource = event["path"].rstrip("/").rsplit("/", 1)[-1]
    query = event.get("queryStringParameters") or {}
    if resource not in DATA:
        return _answer(event, 404, {"error": f"no resource {resource!r}; try orders, customers or products"})
    rows, size = DATA[resource], PER_PAGE[resource]
    if resource == "customers":
        start = int(query.get("cursor") or 0)
        following = str(start + size) if start + size < len(rows) else None
        return _answer(event, 200, {"data": rows[start : start + size], "next_cursor": following})
    page = max(1, int(query.get("page", 1)))
    chunk = rows[(page - 1) * size : page * size]
    headers = {}
    if resource == "orders" and page * size < len(rows):
        headers["link"] = f'<{event["path"]}?page={page + 1}>; rel="next"'
    return _answer(event, 200, chunk, headers)
