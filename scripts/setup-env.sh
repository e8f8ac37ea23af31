# Sourced by scripts/test and scripts/demo: installs what a fresh Debian 12
# machine lacks (apt for system libraries, pip in a venv for build tools), then
# puts the tools on PATH. Safe to run again: it only installs what is missing.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export ROOT

APT_PACKAGES=(
  gcc g++ make pkg-config binutils ninja-build python3 python3-venv python3-pip
  libcmocka-dev libsqlite3-dev sqlite3 zlib1g-dev libpng-dev libjansson-dev libopenblas-dev
  valgrind clang libclang-rt-14-dev
)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

install_apt_packages() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# Build tools (meson >= 1.4 for CUDA 13, pytest) live in a venv so that a
# system Python marked "externally managed" is left alone. It sees the system
# site-packages so tools/ scripts can use a globally installed torch.
setup_python_tools() {
  local venv="$ROOT/.venv"
  if [ ! -x "$venv/bin/python" ]; then
    log "creating $venv"
    python3 -m venv --system-site-packages "$venv"
  fi
  if ! "$venv/bin/python" -c 'import mesonbuild, pytest' 2>/dev/null ||
     ! "$venv/bin/meson" --version >/dev/null 2>&1; then
    log "installing meson, ninja, pytest into $venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "meson>=1.4" ninja pytest
  fi
  export PATH="$venv/bin:$PATH"
}

setup_cuda_path() {
  for d in /usr/local/cuda/bin /usr/local/cuda-*/bin; do
    if [ -x "$d/nvcc" ]; then
      export PATH="$PATH:$d"
      return
    fi
  done
}

setup_all() {
  install_apt_packages
  setup_python_tools
  setup_cuda_path
}

# Configure (or reconfigure) and build BUILD_DIR with extra meson args.
configure_and_build() {
  local dir="$1"; shift
  if [ -f "$dir/build.ninja" ]; then
    meson configure "$dir" "$@" >/dev/null
  else
    meson setup "$dir" "$ROOT" "$@"
  fi
  ninja -C "$dir"
}
