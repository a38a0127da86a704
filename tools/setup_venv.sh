#!/usr/bin/env bash
# Create or update the virtual environment VENV with PYTHON from requirements.txt,
# and register it as this folder's Jupyter kernel (tools/kernel.py).
#   tools/setup_venv.sh PYTHON VENV
# Fast when nothing changed: VENV/.setup-stamp holds the digest of the
# requirements and tools/kernel.py, the Python version and the folder the
# venv was made in.
set -euo pipefail
python=$1 venv=$2

version() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])'; }
want=$(version "$python")
here=$(cd "$(dirname "$venv")" && pwd)/$(basename "$venv")
stamp_text="$(cat requirements.txt tools/kernel.py | sha256sum | cut -d' ' -f1) $want $here"
stamp=$venv/.setup-stamp
[ -f "$stamp" ] && [ "$(cat "$stamp")" = "$stamp_text" ] && exit 0

# A venv of another Python (say a failed attempt with an older one) is rebuilt,
# and so is one made in another folder: its scripts name the old path.
have=$(version "$venv/bin/python" 2>/dev/null || true)
if [ -f "$venv/pyvenv.cfg" ] && [ "$have" != "$want" ]; then
  echo "$venv has Python ${have:-(broken)}, not $want: rebuilding it"
  rm -rf "$venv"
elif [ -f "$venv/pyvenv.cfg" ] && ! grep -qF "$here/bin/python" "$venv/bin/pip" 2>/dev/null; then
  echo "$venv was made in another folder (its scripts name that path): rebuilding it here"
  rm -rf "$venv"
fi
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet -r requirements.txt
# This folder's kernel for Jupyter (tools/kernel.py); `make pdf` does not need it.
"$venv/bin/python" tools/kernel.py >/dev/null 2>&1 ||
  echo "warning: could not register this folder's Jupyter kernel (is HOME=$HOME writable?); make pdf and make test do not need it" >&2
echo "$stamp_text" > "$stamp"
