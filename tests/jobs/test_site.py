"""The site model: discovery, netlify.toml precedence, inline config, limits and problems."""

from __future__ import annotations

import sys
import textwrap
import types
from pathlib import Path

import pytest

from jobs.errors import ConfigError, FunctionNotFound, ScheduleError
from jobs.site import (
    BACKGROUND_BODY_LIMIT,
    SYNC_BODY_LIMIT,
    Function,
    Limits,
    Problem,
    Site,
    check_site,
    load_site,
)

HANDLER = "def handler(event, context):\n    return {'statusCode': 200}\n"


def make_site(root: Path, toml: str | None = None, files: dict[str, str] | None = None) -> Path:
    """Write a site: netlify.toml (dedented) and files relative to the root."""
    if toml is not None:
        (root / "netlify.toml").write_text(textwrap.dedent(toml), encoding="utf-8")
    for name, text in (files or {}).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def functions(*names: str, text: str = HANDLER) -> dict[str, str]:
    """Function files in the default folder, e.g. ``functions("a.py", "b/index.py")``."""
    return {f"netlify/functions/{name}": text for name in names}


def line_of(root: Path, needle: str, file: str = "netlify.toml") -> int:
    """The 1-based line of the first line containing ``needle``, so tests don't hard-code numbers."""
    for number, line in enumerate((root / file).read_text().splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {file}")


def only_problem(root: Path) -> Problem:
    site, problems = check_site(root)
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


# -- discovery ---------------------------------------------------------------------------------------


def test_discovers_file_folder_and_index_forms_sorted_by_name(tmp_path: Path) -> None:
    make_site(tmp_path, files=functions("zeta.py", "alpha/alpha.py", "mid/index.py"))

    site = load_site(tmp_path)

    assert list(site.functions) == ["alpha", "mid", "zeta"]
    base = tmp_path.resolve() / "netlify/functions"
    assert site.get("alpha").path == base / "alpha/alpha.py"
    assert site.get("mid").path == base / "mid/index.py"
    assert site.get("zeta").path == base / "zeta.py"


def test_folder_beats_file_and_name_file_beats_index(tmp_path: Path) -> None:
    make_site(tmp_path, files=functions("job.py", "job/job.py", "job/index.py"))

    site = load_site(tmp_path)

    assert site.get("job").path.relative_to(site.functions_dir).as_posix() == "job/job.py"


def test_folder_without_entry_file_does_not_hide_the_file(tmp_path: Path) -> None:
    make_site(tmp_path, files=functions("job.py", "job/helpers.py"))

    site = load_site(tmp_path)

    assert site.get("job").path.relative_to(site.functions_dir).as_posix() == "job.py"


def test_skips_shared_code_hidden_entries_other_files_and_folders_without_entry(tmp_path: Path) -> None:
    make_site(
        tmp_path,
        files={
            **functions("real.py", "_shared/index.py", "_helpers.py", ".hidden.py", "__init__.py"),
            **functions("__pycache__/real.cpython-311.py", "notes.md", "lib/util.py"),
        },
    )

    assert list(load_site(tmp_path).functions) == ["real"]


@pytest.mark.parametrize("entry", ["my report.py", "hello.world.py", "bad name/index.py", "ünïcode.py"])
def test_invalid_function_name_is_a_problem_naming_the_file(tmp_path: Path, entry: str) -> None:
    make_site(tmp_path, files=functions(entry, "fine.py"))

    site, problems = check_site(tmp_path)

    assert site is not None and list(site.functions) == ["fine"]
    [problem] = problems
    assert problem.file == "netlify/functions/" + entry.split("/")[0]
    assert "alphanumeric characters, hyphen & underscores" in problem.message


def test_no_netlify_toml_and_no_functions_folder_is_an_empty_site(tmp_path: Path) -> None:
    site = load_site(tmp_path)

    assert site.config_file is None
    assert site.functions == {}
    assert site.functions_dir == tmp_path.resolve() / "netlify/functions"


# -- functions directory -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "toml",
    [
        '[functions]\ndirectory = "src/fns"\n',
        '[build]\nfunctions = "src/fns"\n',
        '[Build]\nFunctions = "src/fns"\n',
        '[build]\nfunctions = "elsewhere"\n[functions]\ndirectory = "src/fns"\n',
    ],
    ids=["functions-directory", "legacy-build", "capitalised-build", "directory-wins"],
)
def test_functions_directory_settings(tmp_path: Path, toml: str) -> None:
    make_site(tmp_path, toml, {"src/fns/hello.py": HANDLER, "elsewhere/other.py": HANDLER})

    site = load_site(tmp_path)

    assert site.functions_dir == tmp_path.resolve() / "src/fns"
    assert list(site.functions) == ["hello"]


def test_configured_functions_directory_that_is_missing_is_a_problem(tmp_path: Path) -> None:
    make_site(tmp_path, '[build]\ncommand = "make"\n\n[functions]\ndirectory = "nope"\n')

    problem = only_problem(tmp_path)

    assert (problem.file, problem.line, problem.key) == ("netlify.toml", 5, "functions.directory")
    assert "'nope' does not exist" in problem.message


def test_functions_directory_must_be_a_string(tmp_path: Path) -> None:
    make_site(tmp_path, "[build]\nfunctions = 3\n")

    problem = only_problem(tmp_path)

    assert (problem.line, problem.key) == (2, "build.functions")


def test_function_called_directory_is_a_table_not_the_setting(tmp_path: Path) -> None:
    make_site(tmp_path, '[functions.directory]\nschedule = "@daily"\n', functions("directory.py"))

    site = load_site(tmp_path)

    assert site.functions_dir == tmp_path.resolve() / "netlify/functions"
    assert site.get("directory").schedule == "@daily"


# -- precedence ---------------------------------------------------------------------------------------

PRECEDENCE_TOML = """
[functions]
schedule = "0 0 * * *"

[functions."rep*"]
schedule = "0 1 * * *"

[functions."report-*"]
schedule = "0 2 * * *"

[functions."report-daily"]
schedule = "0 3 * * *"

[backburner]
time_limit = "1m"

[backburner.functions."rep*"]
time_limit = "2m"

[backburner.functions."report-*"]
time_limit = "3m"

[backburner.functions."report-daily"]
time_limit = "4m"
"""


@pytest.mark.parametrize(
    ("name", "schedule", "time_limit_s"),
    [
        ("report-daily", "0 3 * * *", 240.0),
        ("report-weekly", "0 2 * * *", 180.0),
        ("rep-x", "0 1 * * *", 120.0),
        ("other", "0 0 * * *", 60.0),
    ],
    ids=["exact", "longer-glob", "shorter-glob", "star"],
)
def test_most_specific_match_wins_for_scalars(tmp_path: Path, name: str, schedule: str, time_limit_s: float) -> None:
    make_site(tmp_path, PRECEDENCE_TOML, functions(f"{name}.py"))

    function = load_site(tmp_path).get(name)

    assert (function.schedule, function.time_limit_s) == (schedule, time_limit_s)


def test_table_order_in_the_file_does_not_change_precedence(tmp_path: Path) -> None:
    toml = '[functions."report-daily"]\nschedule = "@daily"\n[functions."report-*"]\nschedule = "@hourly"\n'
    make_site(tmp_path, toml, functions("report-daily.py"))

    assert load_site(tmp_path).get("report-daily").schedule == "@daily"


def test_arrays_concatenate_across_matches_least_specific_first(tmp_path: Path) -> None:
    toml = """
    [functions]
    included_files = ["all/**"]
    [functions."report-daily"]
    included_files = ["exact/**"]
    [functions."report-*"]
    included_files = ["glob/**"]
    [backburner]
    on_success = "https://hooks.example.com/all"
    [backburner.functions."report-daily"]
    on_success = ["https://hooks.example.com/one"]
    """
    inline = 'config = {"on_success": "https://hooks.example.com/inline"}\n' + HANDLER
    make_site(tmp_path, toml, functions("report-daily.py", text=inline))

    function = load_site(tmp_path).get("report-daily")

    assert function.config["included_files"] == ["all/**", "glob/**", "exact/**"]
    assert function.on_success == (
        "https://hooks.example.com/all",
        "https://hooks.example.com/one",
        "https://hooks.example.com/inline",
    )


def test_the_same_webhook_from_two_tables_is_called_once(tmp_path: Path) -> None:
    hook = "https://hooks.example.com/done"
    toml = f'[backburner]\non_failure = "{hook}"\n[backburner.functions."a"]\non_failure = ["{hook}"]\n'

    function = function_named(tmp_path, "a", toml)

    assert function.on_failure == (hook,)
    assert function.config["on_failure"] == [hook, hook]


def test_retries_are_replaced_not_concatenated(tmp_path: Path) -> None:
    toml = '[backburner]\nretries = ["1m", "2m"]\n[backburner.functions."quick"]\nretries = []\n'
    make_site(tmp_path, toml, functions("quick.py", "slow.py"))

    site = load_site(tmp_path)

    assert site.get("quick").retry_delays_s == ()
    assert site.get("slow").retry_delays_s == (60.0, 120.0)


def test_exact_table_for_a_missing_function_is_fine(tmp_path: Path) -> None:
    make_site(tmp_path, '[functions."ghost"]\nschedule = "@daily"\n', functions("real.py"))

    site, problems = check_site(tmp_path)

    assert problems == []
    assert site is not None and list(site.functions) == ["real"]


# -- inline config ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "assignment",
    [
        'config = {"schedule": "@hourly", "time_limit": "2m", "retries": ["5s"]}',
        'config: dict = {"schedule": "@hourly", "time_limit": "2m", "retries": ["5s"]}',
        'config = {"schedule": "@daily"}\nconfig = {"schedule": "@hourly", "time_limit": 120, "retries": [5]}',
    ],
    ids=["plain", "annotated", "last-assignment-wins"],
)
def test_inline_config_is_read_statically(tmp_path: Path, assignment: str) -> None:
    make_site(tmp_path, files=functions("tick.py", text=assignment + "\n" + HANDLER))

    function = load_site(tmp_path).get("tick")

    assert (function.schedule, function.time_limit_s, function.retry_delays_s) == ("@hourly", 120.0, (5.0,))


def test_inline_config_never_runs_the_module(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    code = f'open({str(marker)!r}, "w").close()\nconfig = {{"schedule": "@daily"}}\n' + HANDLER
    make_site(tmp_path, files=functions("sneaky.py", text=code))

    assert load_site(tmp_path).get("sneaky").schedule == "@daily"
    assert not marker.exists()


def test_inline_config_wins_over_toml(tmp_path: Path) -> None:
    toml = '[functions."tick"]\nschedule = "@daily"\n[backburner.functions."tick"]\ntimezone = "Europe/Paris"\n'
    inline = 'config = {"schedule": "*/5 * * * *", "timezone": "America/New_York"}\n' + HANDLER
    make_site(tmp_path, toml, functions("tick.py", text=inline))

    function = load_site(tmp_path).get("tick")

    assert (function.schedule, function.timezone) == ("*/5 * * * *", "America/New_York")


def test_inline_none_leaves_the_toml_value(tmp_path: Path) -> None:
    toml = '[functions."tick"]\nschedule = "@daily"\n'
    make_site(tmp_path, toml, functions("tick.py", text='config = {"schedule": None}\n' + HANDLER))

    assert load_site(tmp_path).get("tick").schedule == "@daily"


def test_non_literal_inline_config_is_a_problem_with_its_line(tmp_path: Path) -> None:
    code = 'import os\n\n\nconfig = {"schedule": os.environ["CRON"]}\n' + HANDLER
    make_site(tmp_path, files=functions("tick.py", text=code))

    site, problems = check_site(tmp_path)

    [problem] = problems
    assert (problem.file, problem.line, problem.key) == ("netlify/functions/tick.py", 4, "config")
    assert "config must be a literal dict" in problem.message
    assert site is not None and site.get("tick").schedule is None


def test_inline_config_that_is_not_a_dict_is_a_problem(tmp_path: Path) -> None:
    make_site(tmp_path, files=functions("tick.py", text='config = ["@daily"]\n' + HANDLER))

    assert only_problem(tmp_path).key == "config"


def test_unknown_inline_key_is_a_problem_on_its_line(tmp_path: Path) -> None:
    code = 'config = {\n    "schedule": "@daily",\n    "time_limt": "5m",\n}\n' + HANDLER
    make_site(tmp_path, files=functions("tick.py", text=code))

    problem = only_problem(tmp_path)

    assert (problem.line, problem.key) == (3, "config['time_limt']")
    assert "time_limit" in problem.message  # the list of known keys shows the fix


def test_python_syntax_error_in_a_function_is_a_problem(tmp_path: Path) -> None:
    make_site(tmp_path, files=functions("broken.py", text="def handler(:\n"))

    problem = only_problem(tmp_path)

    assert (problem.file, problem.line) == ("netlify/functions/broken.py", 1)


# -- background ---------------------------------------------------------------------------------------


def test_background_by_suffix_toml_or_inline(tmp_path: Path) -> None:
    toml = '[functions."toml-flag"]\nbackground = true\n[functions."off-background"]\nbackground = false\n'
    inline = 'config = {"background": True}\n' + HANDLER
    files = {
        **functions("plain.py", "hello-background.py", "toml-flag.py", "off-background.py", "Case-Background.py"),
        **functions("inline-flag.py", text=inline),
    }
    make_site(tmp_path, toml, files)

    site = load_site(tmp_path)

    kinds = {name: function.kind for name, function in site.functions.items()}
    assert kinds == {
        "Case-Background": "sync",  # the suffix is case-sensitive, as on Netlify
        "hello-background": "background",
        "inline-flag": "background",
        "off-background": "background",  # background = false does not undo the suffix
        "plain": "sync",
        "toml-flag": "background",
    }


# -- limits -------------------------------------------------------------------------------------------


def function_named(tmp_path: Path, name: str, toml: str | None = None) -> Function:
    make_site(tmp_path, toml, functions(f"{name}.py"))
    return load_site(tmp_path).get(name)


@pytest.mark.parametrize(
    ("name", "trigger", "expected"),
    [
        ("sync", "http", Limits(60.0, (), SYNC_BODY_LIMIT)),
        ("sync", "api", Limits(60.0, (), SYNC_BODY_LIMIT)),
        ("sync", "schedule", Limits(30.0, (), SYNC_BODY_LIMIT)),
        ("job-background", "http", Limits(900.0, (60.0, 120.0), BACKGROUND_BODY_LIMIT)),
        ("job-background", "schedule", Limits(900.0, (60.0, 120.0), BACKGROUND_BODY_LIMIT)),
        ("job-background", "replay", Limits(900.0, (60.0, 120.0), BACKGROUND_BODY_LIMIT)),
    ],
)
def test_default_limits_per_kind_and_trigger(tmp_path: Path, name: str, trigger: str, expected: Limits) -> None:
    assert function_named(tmp_path, name).limits(trigger) == expected  # type: ignore[arg-type]


def test_explicit_time_limit_and_retries_override_every_default(tmp_path: Path) -> None:
    toml = '[backburner]\ntime_limit = "5m"\nretries = ["10s"]\n'
    sync = function_named(tmp_path, "sync", toml)

    assert sync.limits("http") == Limits(300.0, (10.0,), SYNC_BODY_LIMIT)
    assert sync.limits("schedule") == Limits(300.0, (10.0,), SYNC_BODY_LIMIT)


def test_empty_retries_turn_off_background_retries(tmp_path: Path) -> None:
    toml = '[backburner.functions."job-background"]\nretries = []\n'

    limits = function_named(tmp_path, "job-background", toml).limits("api")

    assert limits == Limits(900.0, (), BACKGROUND_BODY_LIMIT)


def test_defaults_of_every_backburner_field(tmp_path: Path) -> None:
    function = function_named(tmp_path, "plain")

    assert (function.timezone, function.overlap, function.catchup) == ("UTC", "skip", "latest")
    assert (function.catchup_window_s, function.concurrency, function.artifacts) == (3600.0, None, None)
    assert (function.time_limit_s, function.retry_delays_s, function.retention_s) == (None, None, None)
    assert (function.on_success, function.on_failure, function.schedule) == ((), (), None)


def test_durations_and_every_backburner_key(tmp_path: Path) -> None:
    toml = """
    [backburner.functions."job"]
    time_limit = "90s"
    retries = ["15m", "1h", 30]
    timezone = "Europe/Paris"
    overlap = "queue"
    catchup = "all"
    catchup_window = "1h"
    concurrency = 3
    on_success = "https://hooks.example.com/ok"
    on_failure = ["http://hooks.example.com/ko", "https://other.example.com/ko"]
    artifacts = "s3://bucket/reports"
    retention = "30d"
    """
    function = function_named(tmp_path, "job", toml)

    assert function.time_limit_s == 90.0
    assert function.retry_delays_s == (900.0, 3600.0, 30.0)
    assert (function.timezone, function.overlap, function.catchup) == ("Europe/Paris", "queue", "all")
    assert (function.catchup_window_s, function.concurrency, function.retention_s) == (3600.0, 3, 2592000.0)
    assert function.on_success == ("https://hooks.example.com/ok",)
    assert function.on_failure == ("http://hooks.example.com/ko", "https://other.example.com/ko")
    assert function.artifacts == "s3://bucket/reports"


# -- problems -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("time_limit", '"soon"', "not a duration"),
        ("time_limit", '"0s"', "more than 0"),
        ("time_limit", "nan", "finite"),
        ("time_limit", "inf", "finite"),
        ("time_limit", '"25h"', "at most 24h"),
        ("time_limit", '"99999999d"', "at most 24h"),
        ("retries", '"1m"', "list of delays"),
        ("retries", '["1m", "later"]', "not a duration"),
        ("retries", "[inf]", "finite"),
        ("retries", "[nan]", "finite"),
        ("retries", '["99999999d"]', "at most 7d"),
        ("retries", '["1m", "0s"]', "more than 0"),
        ("timezone", '"Mars/Olympus_Mons"', "unknown time zone"),
        ("timezone", '"right/Europe/Paris"', "is not a place's zone"),
        ("overlap", '"never"', "'skip', 'queue', 'allow'"),
        ("catchup", '"some"', "'latest', 'none', 'all'"),
        ("catchup_window", '"-5m"', "not a duration"),
        ("concurrency", "0", "1 or more"),
        ("concurrency", "true", "1 or more"),
        ("concurrency", "1.5", "1 or more"),
        ("on_success", '"ftp://example.com/x"', "http(s) URL"),
        ("on_failure", '["https://ok.example.com", 3]', "webhook URL"),
        ("artifacts", '""', "non-empty"),
        ("artifacts", '"gs://bucket/reports"', "only s3://"),
        ("artifacts", '"s3://Bad_Bucket/x"', "not a valid S3 bucket name"),
        ("artifacts", '"s3://ab"', "not a valid S3 bucket name"),
        ("artifacts", '"s3://192.168.0.1/x"', "not a valid S3 bucket name"),
        ("retention", "0", "more than 0"),
        ("retention", "inf", "finite"),
        ("catchup_window", '"0s"', "more than 0"),
        ("memory_limit", '"lots"', "not a size"),
        ("memory_limit", '"1MB"', "from 32MB to 1TB"),
        ("memory_limit", "inf", "not a size"),
        ("max_result", '"1GB"', "from 1B to 64MB"),
        ("max_result", "-1", "not a size"),
        ("environment", '"A=1"', "table of variables"),
        ("environment", '{ "bad name" = "x" }', "not a variable name"),
        ("environment", '{ BACKBURNER_API_TOKEN = "x" }', "Backburner's own secrets"),
        ("environment", '{ BACKBURNER_SESSION_KEY = "x" }', "Backburner's own secrets"),
        ("environment", "{ LIST = [1] }", "string, a number or a boolean"),
    ],
)
def test_bad_backburner_value_is_a_problem_with_file_line_and_key(
    tmp_path: Path, key: str, value: str, says: str
) -> None:
    make_site(tmp_path, f'[build]\ncommand = "make"\n\n[backburner.functions."job"]\n{key} = {value}\n')

    problem = only_problem(tmp_path)

    assert (problem.file, problem.line) == ("netlify.toml", 5)
    assert problem.key == f'backburner.functions."job".{key}'
    assert says in problem.message


def test_bad_global_backburner_value_points_at_the_backburner_table(tmp_path: Path) -> None:
    make_site(tmp_path, '[backburner]\nredis_prefix = "bb"\novelap = 1\noverlap = "maybe"\n')

    _, problems = check_site(tmp_path)

    # A key of the site's own (redis_prefix) is kept; one a letter off a Backburner key is a typo that says so.
    assert [(p.line, p.key) for p in problems] == [(3, "backburner.ovelap"), (4, "backburner.overlap")]
    assert "unknown key 'ovelap' (did you mean 'overlap'?)" in problems[0].message


def test_typos_of_known_keys_and_of_a_functions_name_are_problems_that_say_what_was_meant(tmp_path: Path) -> None:
    toml = (
        '[backburner]\ntme_limit = "1m"\n'
        '[functions."greet-background"]\nshedule = "@hourly"\nnode_bundler = "esbuild"\nfuture_key = 1\n'
        '[functions."greet-backgroud"]\nschedule = "@hourly"\n'
        '[functions."js-only"]\nschedule = "@daily"\n'  # a function Netlify runs and Backburner does not
        '[backburner.functions."greet-background"]\ntimelimit = "1m"\n'
    )
    make_site(tmp_path, toml, functions("greet-background.py"))

    _, problems = check_site(tmp_path)

    meant = "no function 'greet-backgroud' in netlify/functions for this schedule to run"
    assert [(p.line, p.key, p.message.split(";")[0]) for p in problems] == [
        (2, "backburner.tme_limit", "unknown key 'tme_limit' (did you mean 'time_limit'?)"),
        (4, 'functions."greet-background".shedule', "unknown key 'shedule' (did you mean 'schedule'?)"),
        (8, 'functions."greet-backgroud".schedule', f"{meant} (did you mean 'greet-background'?)"),
        (
            12,
            'backburner.functions."greet-background".timelimit',
            "unknown key 'timelimit' (did you mean 'time_limit'?)",
        ),
    ]


@pytest.mark.parametrize(
    ("table", "schedule", "who"),
    [
        ('[functions."nightly"]', '"every night"', "function 'nightly'"),
        ('[functions."night-*"]', '"61 * * * * * *"', "functions matching 'night-*'"),
        ("[functions]", '"@reboot"', "every function"),
    ],
)
@pytest.mark.parametrize("cron_module", ["jobs.site.cron if present", "shape check only"])
def test_bad_schedule_names_the_function_and_expression(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, table: str, schedule: str, who: str, cron_module: str
) -> None:
    if cron_module == "shape check only":
        monkeypatch.setitem(sys.modules, "jobs.site.cron", None)  # makes the import fail
    make_site(tmp_path, f'{table}\nnode_bundler = "esbuild"\nschedule = {schedule}\n', functions("nightly.py"))

    problem = only_problem(tmp_path)

    assert problem.line == 3
    assert problem.key is not None and problem.key.endswith(".schedule")
    assert who in problem.message and schedule.strip('"') in problem.message


def test_schedule_is_checked_by_jobs_cron_when_present(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def parse_cron(expression: str, timezone: str = "UTC") -> object:
        raise ScheduleError(f"minute 61 is out of range in {expression!r}")

    monkeypatch.setitem(sys.modules, "jobs.site.cron", types.SimpleNamespace(parse_cron=parse_cron))
    make_site(tmp_path, '[functions."tick"]\nschedule = "61 * * * *"\n')

    problem = only_problem(tmp_path)

    assert "function 'tick'" in problem.message
    assert "minute 61 is out of range in '61 * * * *'" in problem.message


@pytest.mark.parametrize(
    ("schedule", "ok"),
    [("0 3 * * 1-5", True), ("@hourly", True), ("@reboot", False), ("* * * *", False), ("", False)],
)
def test_schedule_shape_check_without_jobs_cron(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, schedule: str, ok: bool
) -> None:
    monkeypatch.setitem(sys.modules, "jobs.site.cron", None)  # makes the import fail
    make_site(tmp_path, f'[functions."tick"]\nschedule = "{schedule}"\n')

    _site, problems = check_site(tmp_path)

    assert (problems == []) is ok


def test_schedule_and_background_must_have_the_right_types(tmp_path: Path) -> None:
    make_site(tmp_path, '[functions."a"]\nschedule = 5\nbackground = "yes"\n', functions("a.py"))

    site, problems = check_site(tmp_path)

    assert [(p.line, p.key) for p in problems] == [
        (2, 'functions."a".schedule'),
        (3, 'functions."a".background'),
    ]
    assert site is not None and site.get("a").kind == "sync"


def test_unknown_key_in_backburner_functions_lists_known_keys(tmp_path: Path) -> None:
    make_site(tmp_path, '[backburner.functions."job"]\ntimeout = "5m"\n')

    problem = only_problem(tmp_path)

    assert (problem.line, problem.key) == (2, 'backburner.functions."job".timeout')
    assert "unknown key 'timeout'" in problem.message and "time_limit" in problem.message


def test_netlify_key_in_backburner_table_says_where_it_belongs(tmp_path: Path) -> None:
    make_site(tmp_path, '[backburner.functions."job"]\nschedule = "@daily"\n')

    assert '[functions."job"]' in only_problem(tmp_path).message


def test_backburner_key_in_netlify_table_says_where_it_belongs(tmp_path: Path) -> None:
    make_site(tmp_path, '[functions."job"]\ntime_limit = "5m"\n', functions("job.py"))

    site, problems = check_site(tmp_path)

    [problem] = problems
    assert (problem.line, problem.key) == (2, 'functions."job".time_limit')
    assert '[backburner.functions."job"]' in problem.message
    assert site is not None and site.get("job").time_limit_s is None


def test_unknown_plain_value_under_functions_is_a_problem(tmp_path: Path) -> None:
    make_site(tmp_path, '[functions]\nnode_bundler = "esbuild"\nhello = "world"\n')

    problem = only_problem(tmp_path)

    assert (problem.line, problem.key) == (3, "functions.hello")
    assert '[functions."hello"]' in problem.message


def test_tables_that_must_be_tables(tmp_path: Path) -> None:
    make_site(tmp_path, 'functions = "netlify/functions"\nbackburner = 1\n')

    site, problems = check_site(tmp_path)

    assert [(p.line, p.key) for p in problems] == [(1, "functions"), (2, "backburner")]
    assert site is not None


def test_backburner_function_entry_must_be_a_table(tmp_path: Path) -> None:
    make_site(tmp_path, '[backburner.functions]\njob = "5m"\n')

    assert only_problem(tmp_path).key == 'backburner.functions."job"'


def test_toml_syntax_error_gives_the_line_and_no_site(tmp_path: Path) -> None:
    make_site(tmp_path, '[build]\ncommand = "make"\n\n[functions\nschedule = "@daily"\n')

    site, problems = check_site(tmp_path)

    assert site is None
    [problem] = problems
    assert (problem.file, problem.line, problem.key) == ("netlify.toml", 4, None)
    assert "not valid TOML" in problem.message


def test_toml_syntax_error_still_reports_function_problems(tmp_path: Path) -> None:
    make_site(tmp_path, "x = \n", functions("tick.py", text="config = dict(a=1)\n" + HANDLER))

    site, problems = check_site(tmp_path)

    assert site is None
    assert [(p.file, p.line) for p in problems] == [("netlify.toml", 1), ("netlify/functions/tick.py", 1)]


def test_check_site_collects_every_problem_in_file_order(tmp_path: Path) -> None:
    toml = """
    [functions."a"]
    schedule = "nope"

    [backburner.functions."a"]
    time_limit = "forever"
    overlap = "sometimes"
    """
    make_site(tmp_path, toml, functions("a.py", "b c.py", "d.py", text='config = {"concurrency": -1}\n' + HANDLER))

    _site, problems = check_site(tmp_path)

    assert [(p.file, p.line) for p in problems] == [
        ("netlify.toml", 3),
        ("netlify.toml", 6),
        ("netlify.toml", 7),
        ("netlify/functions/a.py", 1),
        ("netlify/functions/b c.py", None),
        ("netlify/functions/d.py", 1),
    ]


def test_load_site_raises_config_error_from_the_first_problem(tmp_path: Path) -> None:
    make_site(tmp_path, '[backburner]\ntimezone = "Nowhere/Land"\noverlap = "x"\n')

    with pytest.raises(ConfigError) as caught:
        load_site(tmp_path)

    assert (caught.value.file, caught.value.line) == ("netlify.toml", 2)
    assert str(caught.value).startswith("netlify.toml:2: backburner.timezone: unknown time zone")
    assert "and 1 more" in str(caught.value)


def test_load_site_raises_for_a_missing_root(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="missing: the site root does not exist"):
        load_site(tmp_path / "missing")


def test_problem_renders_as_file_line_key_message() -> None:
    assert str(Problem("netlify.toml", 12, 'functions."x".schedule', "bad")) == (
        'netlify.toml:12: functions."x".schedule: bad'
    )
    assert str(Problem("netlify/functions/x.py", None, None, "bad")) == "netlify/functions/x.py: bad"


# -- the site object ----------------------------------------------------------------------------------


def test_get_unknown_function_raises_function_not_found(tmp_path: Path) -> None:
    site = load_site(make_site(tmp_path, files=functions("a.py")))

    with pytest.raises(FunctionNotFound) as caught:
        site.get("b")
    assert caught.value.status == 404


def test_settings_are_the_backburner_table_without_functions(tmp_path: Path) -> None:
    toml = '[backburner]\nretention = "7d"\nworkers = 4\n[backburner.functions."a"]\nconcurrency = 1\n'
    site = load_site(make_site(tmp_path, toml, functions("a.py")))

    assert dict(site.settings) == {"retention": "7d", "workers": 4}
    assert site.get("a").retention_s == 7 * 86400


def test_config_is_read_only_and_keeps_netlify_keys(tmp_path: Path) -> None:
    toml = '[functions]\nnode_bundler = "esbuild"\n[functions."a"]\nmemory = 2048\n'
    function = function_named(tmp_path, "a", toml)

    assert dict(function.config) == {"node_bundler": "esbuild", "memory": 2048}
    with pytest.raises(TypeError):
        function.config["memory"] = 1  # type: ignore[index]


REALISTIC_TOML = """
# A site as people really write them: every table Netlify knows, plus Backburner's.
[Build]
  Base = "."
  Command = "npm run build"
  Publish = "dist"
  Functions = "netlify/functions"
  edge_functions = "netlify/edge-functions"
  ignore = "git diff --quiet $CACHED_COMMIT_REF $COMMIT_REF ."

[build.environment]
  NODE_VERSION = "20"
  PYTHON_VERSION = "3.11"

[build.processing]
  skip_processing = false
[build.processing.css]
  bundle = true
  minify = true

[context.production]
  command = "npm run build:prod"
  [context.production.environment]
    ENV = "production"

[context.deploy-preview]
  command = "npm run build:preview"

[context."feat/*"]
  command = "npm run build:feature"

[context.dev.environment]
  DEBUG = "1"

[dev]
  command = "npm run dev"
  port = 8888
  targetPort = 3000
  framework = "#custom"
  autoLaunch = false
  [dev.https]
    certFile = "cert.pem"
    keyFile = "key.pem"

[[redirects]]
  from = "/api/*"
  to = "/.netlify/functions/:splat"
  status = 200
  force = true
  [redirects.headers]
    X-From = "Netlify"

[[redirects]]
  from = "/fr/*"
  to = "/fr/index.html"
  status = 302
  conditions = {Language = ["fr"], Country = ["FR", "BE"]}
  query = {path = ":path"}

[[headers]]
  for = "/*"
  [headers.values]
    X-Frame-Options = "DENY"
    Content-Security-Policy = '''
      default-src 'self';
      script-src 'self'
    '''

[[edge_functions]]
  path = "/admin/*"
  function = "auth"
  cache = "manual"

[[plugins]]
  package = "@netlify/plugin-lighthouse"
  pinned_version = "6"
  [plugins.inputs]
    output_path = "reports/lighthouse.html"

[[plugins]]
  package = "./plugins/local"

[images]
  remote_images = ["https://images.example.com/.*"]

[template]
  incoming-hooks = ["Contentful"]
  description = '''
    To make cleanups wait for each other, add:
    [backburner.functions."cleanup-background"]
    overlap = "skip"
  '''
  [template.environment]
    API_KEY = "change me"

[[integrations]]
  name = "neon"
  [integrations.config]
    branch = "main"

[database.migrations]
  path = "db/migrations"

[something_new]
  nobody = "knows"

[functions]
  node_bundler = "esbuild"
  external_node_modules = ["sharp"]
  included_files = ["data/**"]

[functions."report-*"]
  schedule = "0 6 * * 1"
  included_files = ["templates/**"]

[functions."report-weekly"]
  memory = 2048
  region = "cmh"

[functions."cleanup-background"]
  schedule = "@daily"
  vcpu = 1

[backburner]
  retention = "30d"
  on_failure = "https://alerts.example.com/backburner"

[backburner.functions."report-*"]
  timezone = "Europe/Paris"
  artifacts = "s3://reports-bucket/weekly"
  time_limit = "10m"

[backburner.functions."cleanup-background"]
  retries = ["30s", "5m", "1h"]
  overlap = "queue"
  concurrency = 1
"""


def test_a_big_realistic_netlify_toml(tmp_path: Path) -> None:
    files = {
        **functions("report-weekly/index.py", "cleanup-background.py", "hello.py", "_shared/db.py"),
        **functions("signup/signup.py", text='config = {"time_limit": "20s"}\n' + HANDLER),
    }
    make_site(tmp_path, REALISTIC_TOML, files)

    site, problems = check_site(tmp_path)

    assert problems == []
    assert site is not None
    assert list(site.functions) == ["cleanup-background", "hello", "report-weekly", "signup"]
    report = site.get("report-weekly")
    assert (report.schedule, report.timezone, report.time_limit_s) == ("0 6 * * 1", "Europe/Paris", 600.0)
    assert report.artifacts == "s3://reports-bucket/weekly"
    assert report.config["included_files"] == ["data/**", "templates/**"]
    assert report.on_failure == ("https://alerts.example.com/backburner",)
    assert report.limits("schedule") == Limits(600.0, (), SYNC_BODY_LIMIT)
    cleanup = site.get("cleanup-background")
    assert cleanup.kind == "background" and cleanup.schedule == "@daily"
    assert cleanup.limits("schedule") == Limits(900.0, (30.0, 300.0, 3600.0), BACKGROUND_BODY_LIMIT)
    assert (cleanup.overlap, cleanup.concurrency, cleanup.retention_s) == ("queue", 1, 30 * 86400.0)
    assert site.get("signup").limits("http") == Limits(20.0, (), SYNC_BODY_LIMIT)
    assert site.get("hello").schedule is None
    assert dict(site.settings) == {"retention": "30d", "on_failure": "https://alerts.example.com/backburner"}
    assert isinstance(site, Site) and site.config_file == tmp_path.resolve() / "netlify.toml"


def test_problem_lines_point_into_the_realistic_file(tmp_path: Path) -> None:
    broken = REALISTIC_TOML.replace('overlap = "queue"', 'overlap = "pile-up"')
    make_site(tmp_path, broken, functions("cleanup-background.py"))

    problem = only_problem(tmp_path)

    assert problem.line == line_of(tmp_path, 'overlap = "pile-up"')
    assert problem.key == 'backburner.functions."cleanup-background".overlap'


def test_a_site_root_that_is_missing_or_a_file_is_named_in_full(tmp_path: Path) -> None:
    """Relative to itself, the root would read "." whatever path was given."""
    for root, why in ((tmp_path / "missing", "does not exist"), (tmp_path / "file.txt", "is not a directory")):
        if why == "is not a directory":
            root.write_text("x")
        _, [problem] = check_site(root)
        assert (problem.file, problem.message) == (str(root), f"the site root {why}; pass --site DIR")
