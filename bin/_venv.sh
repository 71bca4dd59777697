# Shared by bin/dev and bin/test: a project virtualenv in .venv, installed from pyproject.toml.
# bin/_setup.py does the work and says what it does (steps, package counts, timings); pip's own output
# goes to .venv/install.log and is shown only when something fails.
ensure_venv() {
    local extras="$1"
    local python="${PYTHON:-python3}"
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "Backburner needs Python 3.11 or newer; '$python' is $("$python" --version 2>&1). Set PYTHON=/path/to/python3.11." >&2
        exit 1
    fi
    local stamp=".venv/.installed${extras}"
    # An environment installed with the test extras has everything bin/dev needs too.
    local stamp_test=".venv/.installed[test]"
    if [ -x .venv/bin/python ]; then
        if [ -f "$stamp" ] && [ ! pyproject.toml -nt "$stamp" ]; then return 0; fi
        if [ -z "$extras" ] && [ -f "$stamp_test" ] && [ ! pyproject.toml -nt "$stamp_test" ]; then return 0; fi
        python=.venv/bin/python # keep the interpreter the environment was made with
    fi
    "$python" bin/_setup.py "$extras" "$stamp"
}

# Run "$@" quietly with its output in the file <log>, saying what it does and how long it took; on failure,
# show the end of that output and stop.
quiet_step() {
    local label="$1" log="$2"
    shift 2
    printf '  %s ... ' "$label" >&2
    local started=$SECONDS
    if "$@" >"$log" 2>&1; then
        echo "done in $((SECONDS - started)) s" >&2
    else
        local code=$?
        echo "FAILED (exit code $code). The end of its output:" >&2
        tail -n 25 "$log" | sed 's/^/    /' >&2
        echo "The whole output is in $log." >&2
        exit 1
    fi
}
