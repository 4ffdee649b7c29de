# Sourced by the bin/ launchers: make sure ./.venv holds this project, then return.
# Installs on first use or when pyproject.toml changed; otherwise costs one hash.
# Usage: ensure_venv EXTRAS   (EXTRAS is "" or "test")
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"

ensure_venv() {
    local extras="$1" want stamp py
    want="$(cat "$ROOT/pyproject.toml" | cksum | cut -d' ' -f1)"
    stamp="$VENV/.chanrouter-installed${extras:+-$extras}"
    if [[ -x "$VENV/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        return 0
    fi
    py=""
    for candidate in ${PYTHON:-python3 python3.13 python3.12 python3.11}; do
        if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            py="$candidate"
            break
        fi
    done
    if [[ -z "$py" ]]; then
        echo "chanrouter needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)" >&2
        exit 1
    fi
    echo "[chanrouter] installing into $VENV${extras:+ (with $extras extras)} ..." >&2
    [[ -x "$VENV/bin/python" ]] || "$py" -m venv "$VENV"
    local log="$VENV/.chanrouter-install.log"
    # pip's and setuptools' chatter goes to a log, shown only if the install fails.
    if ! { "$VENV/bin/python" -m pip install --disable-pip-version-check --upgrade pip \
            && "$VENV/bin/python" -m pip install --disable-pip-version-check \
                -e "$ROOT${extras:+[$extras]}"; } >"$log" 2>&1; then
        cat "$log" >&2
        echo "[chanrouter] install failed (log: $log)" >&2
        exit 1
    fi
    echo "$want" > "$stamp"
    # A test install satisfies the plain one too.
    [[ -z "$extras" ]] || echo "$want" > "$VENV/.chanrouter-installed"
}
