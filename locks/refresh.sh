#!/usr/bin/env bash
# Refresh locks/requirements.txt on purpose (`make lock`): resolve pyproject.toml's ranges
# afresh in a throwaway venv (torch pinned first, as `make setup` does), freeze what pip
# chose, and record every file hash of those exact versions (uv pip compile --no-deps).
# Review the diff, then run `make test` before committing the new lock.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
torch_pin=${TORCH_PIN:?TORCH_PIN is set by the Makefile}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --upgrade pip uv
"$work/venv/bin/python" -m pip install -q "$torch_pin"
"$work/venv/bin/python" -m pip install -q '.[torch,test,dev]'
# Everything but normcore itself, torch (installed from the pin) and the lock tool.
"$work/venv/bin/python" -m pip freeze --all --exclude-editable \
    | grep -viE '^(normcore|torch|uv) ?[=@]' | grep -v '^normcore' > "$work/frozen.txt"
"$work/venv/bin/uv" pip compile "$work/frozen.txt" --no-deps --generate-hashes --quiet \
    --python-version 3.11 --no-header --no-annotate --output-file "$work/requirements.txt"
{
    echo "# Exact versions of every dependency of normcore[torch,test,dev] except torch"
    echo "# (the Makefile installs $torch_pin from the CPU wheel), with hashes."
    echo "# Installed by \`make setup\`; refreshed on purpose by \`make lock\` (locks/refresh.sh)."
    cat "$work/requirements.txt"
} > locks/requirements.txt
echo "locks/requirements.txt: $(grep -c '==' locks/requirements.txt) packages"
