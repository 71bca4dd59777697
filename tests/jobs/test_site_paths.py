"""Folders as Netlify reads them: [build] key cases, empty values, leading slashes, the site root, base."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.errors import ConfigError
from jobs.site import check_site, load_site
from tests.jobs.test_site import HANDLER, functions, line_of, make_site, only_problem


def functions_dir(root: Path) -> str:
    return load_site(root).functions_dir.relative_to(root.resolve()).as_posix()


@pytest.mark.parametrize(
    "toml",
    [
        '[functions]\ndirectory = "/src/fns"\n',
        '[build]\nfunctions = "/src/fns"\n',
        '[build]\nfunctions = "//src/fns/"\n',
        '[Build]\nFunctions = "/src/fns"\n',
        '[functions]\ndirectory = "src/other/../fns"\n',
    ],
    ids=["directory", "legacy-build", "many-slashes", "capitalised", "dot-dot-inside"],
)
def test_a_leading_slash_is_relative_to_the_site_root(tmp_path: Path, toml: str) -> None:
    make_site(tmp_path, toml, {"src/fns/hello.py": HANDLER})

    assert functions_dir(tmp_path) == "src/fns"
    assert list(load_site(tmp_path).functions) == ["hello"]


def test_a_folder_on_the_host_with_the_same_absolute_path_is_never_used(tmp_path: Path) -> None:
    outside = tmp_path / "host" / "fns"
    outside.mkdir(parents=True)
    (outside / "stolen.py").write_text(HANDLER)
    site_root = tmp_path / "site"
    site_root.mkdir()
    make_site(site_root, f'[functions]\ndirectory = "{outside}"\n', {f"{outside.relative_to('/')}/mine.py": HANDLER})

    site = load_site(site_root)

    assert site.functions_dir == site_root.resolve() / outside.relative_to("/")
    assert list(site.functions) == ["mine"]


@pytest.mark.parametrize(
    ("toml", "key", "value"),
    [
        ('[functions]\ndirectory = "../elsewhere"\n', "functions.directory", "../elsewhere"),
        ('[build]\nfunctions = "/../../etc"\n', "build.functions", "/../../etc"),
        ('[Build]\nFunctions = "fns/../../x"\n', "Build.Functions", "fns/../../x"),
        ('[build]\nbase = "../x"\n', "build.base", "../x"),
        ('[build]\npublish = "/../dist"\n', "build.publish", "/../dist"),
    ],
)
def test_a_folder_outside_the_site_root_is_a_precise_error(tmp_path: Path, toml: str, key: str, value: str) -> None:
    make_site(tmp_path, "# a site\n" + toml)

    problem = only_problem(tmp_path)

    assert (problem.file, problem.line, problem.key) == ("netlify.toml", 3, key)
    assert f"{value!r} is outside the site root" in problem.message
    assert "a leading '/' means the site root" in problem.message
    with pytest.raises(ConfigError, match=r"netlify.toml:3: .*is outside the site root"):
        load_site(tmp_path)


@pytest.mark.parametrize(
    "toml",
    [
        '[functions]\ndirectory = ""\n',
        '[functions]\ndirectory = "   "\n',
        '[build]\nfunctions = ""\n',
        '[Build]\nFunctions = ""\n',
        '[build]\nfunctions = ""\nbase = ""\npublish = " "\n',
        '[functions]\ndirectory = ""\n[build]\nfunctions = "elsewhere"\n',
    ],
    ids=["directory", "blank", "legacy", "capitalised", "every-key", "empty-directory-still-beats-build"],
)
def test_an_empty_value_means_the_default(tmp_path: Path, toml: str) -> None:
    make_site(tmp_path, toml, {**functions("hello.py"), "elsewhere/other.py": HANDLER})

    assert functions_dir(tmp_path) == "netlify/functions"
    assert list(load_site(tmp_path).functions) == ["hello"]


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('[build]\nFunctions = "upper"\nfunctions = "lower"\n', "lower"),
        ('[build]\nfunctions = "lower"\nFunctions = "upper"\n', "lower"),
        ('[Build]\nfunctions = "lower"\n[build]\ncommand = "make"\n', "netlify/functions"),
        ('[build]\nFUNCTIONS = "shouting"\n', "netlify/functions"),
        ('[BUILD]\nfunctions = "shouting"\n', "netlify/functions"),
    ],
    ids=["lower-after", "lower-first", "build-table-wins-whole", "all-caps-key-is-unknown", "all-caps-table"],
)
def test_the_lower_case_spelling_wins(tmp_path: Path, toml: str, expected: str) -> None:
    files = {f"{folder}/f.py": HANDLER for folder in ("upper", "lower", "shouting", "netlify/functions")}
    make_site(tmp_path, toml, files)

    assert functions_dir(tmp_path) == expected


def test_base_is_where_the_functions_folder_is_read_from(tmp_path: Path) -> None:
    make_site(tmp_path, '[build]\nbase = "/site"\nfunctions = "api"\n', {"site/api/hello.py": HANDLER})

    assert functions_dir(tmp_path) == "site/api"


def test_the_default_functions_folder_is_inside_base(tmp_path: Path) -> None:
    files = {"web/netlify/functions/inner.py": HANDLER, "netlify/functions/outer.py": HANDLER}
    make_site(tmp_path, '[Build]\n  Base = "web"\n  Command = "npm run build"\n', files)

    site = load_site(tmp_path)

    assert functions_dir(tmp_path) == "web/netlify/functions" and list(site.functions) == ["inner"]


def test_folders_may_leave_base_but_not_the_site_root(tmp_path: Path) -> None:
    make_site(tmp_path, '[build]\nbase = "apps/web"\nfunctions = "../../shared/fns"\n', {"shared/fns/s.py": HANDLER})
    (tmp_path / "apps/web").mkdir(parents=True)

    assert functions_dir(tmp_path) == "shared/fns"


def test_a_missing_base_folder_is_a_precise_error(tmp_path: Path) -> None:
    make_site(tmp_path, '[build]\ncommand = "make"\nbase = "frontend"\n')

    problem = only_problem(tmp_path)

    assert (problem.line, problem.key) == (3, "build.base")
    assert problem.message == "base folder 'frontend' does not exist; create it or fix build.base"


def test_a_base_folder_with_its_own_netlify_toml_is_read_instead(tmp_path: Path) -> None:
    root_toml = '[build]\nbase = "apps/web"\nfunctions = "ignored"\n[functions."a"]\nschedule = "@daily"\n'
    files = {"apps/web/netlify/functions/a.py": HANDLER, "apps/web/ignored/b.py": HANDLER}
    make_site(tmp_path, root_toml, files)
    (tmp_path / "apps/web/netlify.toml").write_text('[build]\nbase = "elsewhere"\n\n[functions."a"]\nschedule = 5\n')

    site, problems = check_site(tmp_path)

    [problem] = problems  # the base folder's file is the one read, and its own base is ignored
    assert (problem.file, problem.line, problem.key) == ("apps/web/netlify.toml", 5, 'functions."a".schedule')
    (tmp_path / "apps/web/netlify.toml").write_text('[functions."a"]\nschedule = "@hourly"\n')
    site = load_site(tmp_path)
    assert site.config_file == tmp_path.resolve() / "apps/web/netlify.toml"
    assert functions_dir(tmp_path) == "apps/web/netlify/functions"
    assert site.get("a").schedule == "@hourly"
    assert tmp_path.resolve() / "apps/web/netlify.toml" in site.sources


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[functions]\ndirectory = 3\n", "functions.directory"),
        ("[build]\nbase = false\n", "build.base"),
        ("[Build]\nPublish = [1]\n", "Build.Publish"),
    ],
)
def test_a_folder_that_is_not_a_string_is_a_precise_error(tmp_path: Path, toml: str, key: str) -> None:
    make_site(tmp_path, toml)

    problem = only_problem(tmp_path)

    assert (problem.line, problem.key) == (2, key)
    assert "must be a folder name (a string)" in problem.message


def test_build_must_be_a_table(tmp_path: Path) -> None:
    make_site(tmp_path, 'build = "npm run build"\n')

    problem = only_problem(tmp_path)

    assert (problem.line, problem.key) == (1, "build")
    assert problem.message.startswith("must be a table")


def test_problems_about_folders_point_at_their_line_in_a_realistic_file(tmp_path: Path) -> None:
    toml = """
    # Settings in the [build] context are global and are applied to all contexts
    [build]
      base    = "/"
      publish = "public/"
      command = "npm run build"
      functions = "/netlify/../../lambda"

    [context.production.environment]
      NODE_ENV = "production"
    """
    make_site(tmp_path, toml)

    problem = only_problem(tmp_path)

    assert problem.line == line_of(tmp_path, "functions = ")
