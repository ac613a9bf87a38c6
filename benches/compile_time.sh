#!/usr/bin/env bash
# Compile-time cost of #[audited]: a generated crate with 500 annotated functions over
# a 200-event catalog, beside the same functions without attributes and under
# `tracing::instrument`. Dependencies are built first; each crate is then cleaned and
# rebuilt alone (debug profile), RUNS times; medians of rustc's own total (from
# -Z time-passes, via RUSTC_BOOTSTRAP) and of wall time are reported.
#
#   bash benches/compile_time.sh            # RUNS=3 by default
#   CRATES="audited" RUNS=1 bash benches/compile_time.sh   # one variant only
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${RUNS:-3}
WS=$ROOT/target/compile-bench
rm -rf "$WS/plain" "$WS/audited" "$WS/traced"
mkdir -p "$WS"

cat > "$WS/Cargo.toml" <<TOML
[workspace]
members = ["plain", "audited", "traced"]
resolver = "3"
TOML
cp "$ROOT/Cargo.lock" "$WS/Cargo.lock"

{
  echo '[catalog]'; echo 'name = "bench"'
  for i in $(seq 1 200); do
    echo "[events.ev_$i]"; echo "code = $i"
    echo "description = \"%{name} did $i\""
    echo 'fields = { id = "int", name = "string", flag = "bool", count = "uint" }'
  done
} > "$WS/audit.toml"

gen() { # crate, dependency line, attribute template (EV = event number)
  local name=$1 dep=$2 attr=$3
  mkdir -p "$WS/$name/src"
  cat > "$WS/$name/Cargo.toml" <<TOML
[package]
name = "$name"
version = "0.0.0"
edition = "2024"
publish = false

[package.metadata.audit]
catalog = "../audit.toml"

[dependencies]
$dep
TOML
  {
    echo 'pub struct Item { pub id: i64, pub name: String, pub flag: bool, pub count: u64 }'
    echo '#[derive(Debug)] pub struct Error;'
    echo 'impl std::fmt::Display for Error { fn fmt(&self, f: &mut std::fmt::Formatter<'"'"'_>) -> std::fmt::Result { f.write_str("e") } }'
    for i in $(seq 1 500); do
      ev=$(( (i - 1) % 200 + 1 ))
      echo "${attr//EV/$ev}"
      echo "pub fn handler_$i(x: &Item) -> Result<u64, Error> { if x.flag { return Err(Error); } Ok(x.count + $i) }"
    done
    echo 'pub fn all(x: &Item) -> u64 { let mut n = 0;'
    for i in $(seq 1 500); do echo "n += handler_$i(x).unwrap_or(0);"; done
    echo 'n }'
  } > "$WS/$name/src/lib.rs"
}

gen plain "" ""
gen audited "audit = { path = \"$ROOT\" }" '#[audit::audited(event = "ev_EV", meta(id = x.id, name = &x.name, flag = x.flag, count = x.count))]'
gen traced 'tracing = "0.1"' '#[tracing::instrument(skip(x), fields(id = x.id, name = %x.name, flag = x.flag, count = x.count))]'

cd "$WS"
echo "building dependencies..." >&2
cargo build --offline -q --workspace 2>&1 | grep -v '^$' >&2 || true

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
CRATES=${CRATES:-plain audited traced}
declare -A WALL RUSTC
for name in $CRATES; do
  walls=(); totals=()
  for _ in $(seq 1 "$RUNS"); do
    cargo clean --offline -q -p "$name"
    s=$(date +%s.%N)
    # rustc's own -Z time-passes total is far steadier than wall time on a shared machine.
    RUSTC_BOOTSTRAP=1 cargo rustc --offline -q -p "$name" -- -Z time-passes 2> "$WS/$name.time-passes"
    e=$(date +%s.%N)
    walls+=("$(echo "$e - $s" | bc)")
    totals+=("$(awk '$NF == "total" {gsub(/;/, "", $2); print $2}' "$WS/$name.time-passes" | tail -1)")
  done
  WALL[$name]=$(printf '%s\n' "${walls[@]}" | median)
  RUSTC[$name]=$(printf '%s\n' "${totals[@]}" | median)
done

printf '\n| crate (500 fns, 200-event catalog) | rustc total, median of %s | wall, median | vs plain (rustc) | vs traced (rustc) |\n|---|---|---|---|---|\n' "$RUNS"
for name in $CRATES; do
  printf '| %s | %.2f s | %.2f s | %.2fx | %.2fx |\n' "$name" "${RUSTC[$name]}" "${WALL[$name]}" \
    "$(echo "${RUSTC[$name]} / ${RUSTC[plain]:-${RUSTC[$name]}}" | bc -l)" \
    "$(echo "${RUSTC[$name]} / ${RUSTC[traced]:-${RUSTC[$name]}}" | bc -l)"
done
