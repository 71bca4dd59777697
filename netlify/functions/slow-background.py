"""A background function: the caller gets 202 at once; this runs in a worker and reports progress."""

import json
import time


def handler(event, context):
    payload = json.loads(event.get("body") or "{}")
    steps = int(payload.get("n", 3))
    for step in range(steps):
        context.log.info("step %d of %d", step + 1, steps)
        context.progress(step, steps, f"working on step {step + 1}")
        time.sleep(1)
    context.progress(steps, steps, "done")
    return {"steps": steps, "attempt": context.attempt}
