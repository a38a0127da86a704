#!/usr/bin/env bash
# Create or update the virtual environment VENV with PYTHON from requirements.txt,
# and register it as the Jupyter kernel "Python (ECE 685D HW2)".
#   tools/setup_venv.sh PYTHON VENV
set -euo pipefail
python=$1 venv=$2

version() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])'; }

# A venv of another Python (say a failed attempt with an older one) is rebuilt.
want=$(version "$python")
have=$(version "$venv/bin/python" 2>/dev/null || true)
if [ -f "$venv/pyvenv.cfg" ] && [ "$have" != "$want" ]; then
  echo "$venv has Python ${have:-(broken)}, not $want: rebuilding it"
  rm -rf "$venv"
fi
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet -r requirements.txt
"$venv/bin/python" -m ipykernel install --user --name ece685d-hw2 \
  --display-name "Python (ECE 685D HW2)" >/dev/null
