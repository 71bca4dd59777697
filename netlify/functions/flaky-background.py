"""Fails on its first attempt and succeeds on the next: watch a retry happen in `dev`."""


def handler(event, context):
    if context.attempt == 1:
        raise RuntimeError("the first attempt always fails (on purpose)")
    return {"succeeded_on_attempt": context.attempt}
