"""Templates: built-in by default, a site's own files first, and errors that point at the template."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest

from reports import Report, ReportError, _templating
from tests.reports.conftest import GENERATED_AT, page


def _site(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "site" / "reports"
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_a_site_template_wins_over_the_built_in_one(tmp_path: Path) -> None:
    folder = _site(tmp_path, {"report.html.j2": "<h1>Site: {{ title }}</h1>{{ sections | length }} sections"})
    rep = Report("Sales <Q4>", template_dirs=[folder], generated_at=GENERATED_AT)
    rep.note("hello")

    assert page(rep) == "<h1>Site: Sales &lt;Q4&gt;</h1>1 sections"


def test_a_site_stylesheet_alone_overrides_the_built_in_css(tmp_path: Path) -> None:
    folder = _site(tmp_path, {"base.css": "body { color: rebeccapurple; }"})

    html = page(Report("Styled", template_dirs=folder, generated_at=GENERATED_AT))

    assert "rebeccapurple" in html
    assert "@media print" not in html  # the whole built-in stylesheet was replaced
    assert "<h1>Styled</h1>" in html  # with the built-in page around it


def test_the_first_site_folder_wins(tmp_path: Path) -> None:
    first = _site(tmp_path / "a", {"report.html.j2": "first"})
    second = _site(tmp_path / "b", {"report.html.j2": "second"})

    assert page(Report("x", template_dirs=[first, second])) == "first"


def test_an_undefined_name_in_a_custom_template_is_a_report_error(tmp_path: Path) -> None:
    folder = _site(tmp_path, {"report.html.j2": "<h1>{{ title }}</h1>\n<p>{{ totl }}</p>"})
    rep = Report("Broken", template_dirs=[folder])

    with pytest.raises(ReportError) as caught:
        page(rep)

    message = str(caught.value)
    assert "'totl' is undefined" in message
    assert "report.html.j2:2" in message  # the template and the line
    assert isinstance(caught.value.__cause__, jinja2.UndefinedError)


def test_a_syntax_error_in_a_custom_template_is_a_report_error(tmp_path: Path) -> None:
    folder = _site(tmp_path, {"report.html.j2": "{% for s in sections %}\nno end"})

    with pytest.raises(ReportError, match=r"report\.html\.j2:\d+: cannot render template"):
        page(Report("Broken", template_dirs=[folder]))


def test_a_missing_template_folder_fails_when_the_report_is_made(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="nowhere: template folder does not exist"):
        Report("x", template_dirs=[tmp_path / "nowhere"])


def test_environments_are_built_once_autoescaping_and_strict(tmp_path: Path) -> None:
    folder = str(_site(tmp_path, {}))

    env = _templating.environment((folder,))

    assert _templating.environment((folder,)) is env
    assert _templating.environment(()) is not env
    assert env.autoescape is True
    assert env.undefined is jinja2.StrictUndefined


def test_the_built_in_template_documents_its_variables() -> None:
    source = (Path(_templating.__file__).parent / "templates" / "report.html.j2").read_text()
    header = source.split("-#}")[0]

    for name in ("title", "subtitle", "period", "generated_at", "extra", "sections", "kpis", "table", "chart"):
        assert name in header
