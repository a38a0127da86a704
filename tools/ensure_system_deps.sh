#!/usr/bin/env bash
# Make sure the programs that build and check the PDFs exist.
# As root on Debian/Ubuntu, install the missing ones with apt; elsewhere say what to install.
set -euo pipefail

needed=(xelatex pandoc latexmk pdftotext pdfimages)
packages=(texlive-xetex texlive-fonts-recommended texlive-plain-generic
          texlive-latex-extra pandoc latexmk poppler-utils)

find_missing() {
  missing=()
  for cmd in "${needed[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
  done
}

find_missing
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing ${packages[*]} (missing: ${missing[*]})"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${packages[@]}" >/dev/null
  find_missing  # apt can succeed and still leave one out
  [ ${#missing[@]} -eq 0 ] && exit 0
  echo "Still missing after apt-get install: ${missing[*]}" >&2
fi

cat >&2 <<MSG
Missing programs: ${missing[*]}
Install a TeX distribution with XeLaTeX and latexmk, plus pandoc and poppler-utils.
On Debian/Ubuntu: sudo apt-get install ${packages[*]}
On macOS: brew install --cask mactex && brew install pandoc poppler
MSG
exit 1
