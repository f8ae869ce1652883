#!/usr/bin/env bash
# System packages docforge's jobs need (TeX Live, LaTeXML, fonts), installed only when missing.
# Used by `make install` and by the cluster setup commands. Needs root (or passwordless sudo).
set -euo pipefail

PACKAGES=(
  latexml
  texlive-latex-base texlive-latex-recommended texlive-latex-extra texlive-fonts-recommended texlive-science
  texlive-xetex texlive-lang-chinese texlive-publishers
  fonts-dejavu-core fonts-dejavu-extra fonts-liberation fonts-noto-core fonts-noto-cjk fonts-wqy-microhei
  fonts-arphic-gkai00mp fonts-arphic-gbsn00lp fonts-urw-base35
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "system packages missing (${missing[*]}) and no apt-get here: install them with your package manager" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "system packages missing (${missing[*]}): run 'sudo make install' or install them as root" >&2
    exit 1
  fi
fi
echo "system packages: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
echo "system packages: done"
