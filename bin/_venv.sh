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
    py="${PYTHON:-python3}"
    if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "chanrouter needs Python 3.11 or newer as '$py' (set PYTHON=/path/to/python3.11)" >&2
        exit 1
    fi
    echo "[chanrouter] installing into $VENV${extras:+ (with $extras extras)} ..." >&2
    [[ -x "$VENV/bin/python" ]] || "$py" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$ROOT${extras:+[$extras]}" >&2
    echo "$want" > "$stamp"
    # A test install satisfies the plain one too.
    [[ -z "$extras" ]] || echo "$want" > "$VENV/.chanrouter-installed"
}
