"""Does nothing, quickly: used by the benchmarks to measure Backburner's own overhead."""


def handler(event, context):
    return None
