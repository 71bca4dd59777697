"""A scheduled background function (see netlify.toml): gets Netlify's {"next_run": ...} body."""

import json


def handler(event, context):
    body = json.loads(event.get("body") or "{}")
    context.log.info("cleanup run; next run at %s", body.get("next_run"))
    return {"cleaned": 0, "next_run": body.get("next_run")}
