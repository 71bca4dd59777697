"""Build throwaway sites (netlify.toml + function files) for tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

#: Functions most integration tests need, as source text.
FUNCTIONS: dict[str, str] = {
    "hello": """
        import json
        def handler(event, context):
            return {"statusCode": 200, "headers": {"content-type": "application/json"},
                    "body": json.dumps({"hello": "world", "method": event["httpMethod"]})}
    """,
    "echo": """
        import json
        def handler(event, context):
            return {"statusCode": 200, "body": json.dumps(event)}
    """,
    "echo-background": """
        import json
        def handler(event, context):
            context.log.info("echoing")
            return {"event": event, "attempt": context.attempt, "run_id": context.run_id,
                    "remaining_ms": context.get_remaining_time_in_millis()}
    """,
    "async-background": """
        import asyncio
        async def handler(event, context):
            await asyncio.sleep(0.01)
            return {"async": True}
    """,
    "fail-background": """
        def handler(event, context):
            raise ValueError(f"boom on attempt {context.attempt}")
    """,
    "flaky-background": """
        def handler(event, context):
            if context.attempt < 3:
                raise RuntimeError(f"attempt {context.attempt} fails")
            return {"ok_on": context.attempt}
    """,
    "sleepy-background": """
        import time
        def handler(event, context):
            time.sleep(300)
    """,
    "busy-background": """
        def handler(event, context):
            while True:
                pass
    """,
    "crash-background": """
        import os
        def handler(event, context):
            if context.attempt == 1:
                os._exit(7)
            return {"recovered_on": context.attempt}
    """,
    "wait-background": """
        import json, os, time
        def handler(event, context):
            # Blocks until the test creates the file named in the payload, then succeeds.
            path = json.loads(event["body"])["until"]
            with open(path + ".tmp", "w") as out:  # whole or not at all: tests read it as soon as it exists
                out.write(str(os.getpid()))
            os.replace(path + ".tmp", path + ".started")
            while not os.path.exists(path):
                time.sleep(0.05)
            return {"attempt": context.attempt}
    """,
    "spawner-background": """
        import json, os, time
        def handler(event, context):
            # Starts two wait-background runs, says which, then waits for a file that never comes.
            base = json.loads(event["body"])["until"]
            ids = context.spawn("wait-background", [{"until": f"{base}-{n}"} for n in range(2)])
            with open(base + ".tmp", "w") as out:
                out.write(json.dumps(ids))
            os.replace(base + ".tmp", base + ".spawned")
            while not os.path.exists(base):
                time.sleep(0.05)
    """,
    "permanent-background": """
        from jobs.retry import NonRetriable
        def handler(event, context):
            raise NonRetriable(f"cannot work, attempt {context.attempt}")
    """,
    "later-background": """
        from jobs.retry import RetryAfter
        def handler(event, context):
            if context.attempt == 1:
                raise RetryAfter(1.5, "rate limited")
            return {"attempt": context.attempt}
    """,
    "single-background": """
        import json, os, time
        def handler(event, context):
            # Records when it ran; at most one runs at a time (concurrency = 1).
            folder = json.loads(event["body"])["dir"]
            started = time.time()
            time.sleep(0.3)
            with open(os.path.join(folder, context.run_id), "w") as out:
                json.dump([started, time.time()], out)
    """,
    "default-retries-background": """
        def handler(event, context):
            raise RuntimeError("always fails; default retry schedule")
    """,
}

TOML = """
[functions]
  directory = "netlify/functions"

[backburner.functions."*-background"]
  retries = ["1s", "2s"]

[backburner.functions."later-background"]
  retries = ["0.1s", "0.1s"]

[backburner.functions."single-background"]
  concurrency = 1

[backburner.functions."default-retries-background"]
  retries = ["60s", "120s"]

[backburner.functions."sleepy-background"]
  time_limit = "1s"
  retries = []

[backburner.functions."busy-background"]
  time_limit = "1s"
  retries = []

[backburner.functions."crash-background"]
  retries = ["0.2s"]

[backburner.functions."wait-background"]
  retries = ["0.2s", "0.2s"]
"""


def make_site(root: Path, functions: dict[str, str] | None = None, toml: str = TOML) -> Path:
    folder = root / "netlify" / "functions"
    folder.mkdir(parents=True, exist_ok=True)
    for name, source in (functions or FUNCTIONS).items():
        (folder / f"{name}.py").write_text(textwrap.dedent(source).lstrip())
    (root / "netlify.toml").write_text(textwrap.dedent(toml))
    return root
