"""``backburner webhooks``: what receivers need to know, starting with the secret they verify signatures with."""

from __future__ import annotations

import os
from pathlib import Path

import click

from jobs.errors import ConfigError

from .options import console, out, site_option


@click.group()
def webhooks() -> None:
    """Webhook destinations (on_success, on_failure): see `webhooks secret`."""


@webhooks.command("secret")
@site_option
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The data folder `dev` uses (default: BACKBURNER_DATA_DIR or .backburner in the site).",
)
def secret(site: Path | None, data_dir: Path | None) -> None:
    """Print the secret webhooks are signed with, for receivers to verify signatures (Standard Webhooks).

    That is BACKBURNER_WEBHOOK_SECRET when it is set, else the one `backburner dev` made on its first start
    (kept in its data folder).

    \b
    Examples:
      backburner webhooks secret
      WEBHOOK_SECRET=$(backburner webhooks secret) python receiver.py
    """
    from jobs.settings import load_settings

    from .dev import secret_path

    if os.environ.get("BACKBURNER_WEBHOOK_SECRET"):
        console.print("[dim]from BACKBURNER_WEBHOOK_SECRET[/]")
        out.print(os.environ["BACKBURNER_WEBHOOK_SECRET"], markup=False, highlight=False)
        return
    settings = load_settings(site=site, data_dir=data_dir)
    path = secret_path(settings.data_path)
    try:
        value = path.read_text(encoding="ascii").strip()
    except OSError:
        value = ""
    if not value.startswith("whsec_"):
        raise ConfigError(
            f"no webhook secret in {path}: `backburner dev` makes one there on its first start (with the same "
            "--site and --data-dir); outside dev, webhooks are signed with BACKBURNER_WEBHOOK_SECRET"
        )
    console.print(f"[dim]the secret `backburner dev` signs with (kept in {path})[/]")
    out.print(value, markup=False, highlight=False)
