"""Options and consoles shared by the CLI's modules."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

site_option = click.option(
    "--site",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Site root with netlify.toml (default: BACKBURNER_SITE or .).",
)
url_option = click.option("--url", default=None, help="API URL (default: BACKBURNER_URL or http://127.0.0.1:8888).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
