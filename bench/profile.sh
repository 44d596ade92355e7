#!/usr/bin/env bash
# Where the hub's CPU goes during the benchmark's warm throughput phase (bench/README.md,
# "Profiling"): runs bench/run.sh with the hub's JIT symbols written for perf, samples the hub
# process with `perf record -g` for the first N seconds of the throughput phase, and prints
#   - the share of samples per thread kind (workers, GC, JIT) and per library;
#   - the hub's own methods by inclusive share;
#   - the share of samples with a metrics frame on the stack: recording or exporting a
#     measurement (OpenTelemetry, System.Diagnostics.Metrics, the HTTP client's, Kestrel's and
#     hosting's metric recording, Postback's own instruments). A hub with metrics off does none
#     of that work, so this is what metrics cost in CPU, free of run-to-run noise.
#
#   bench/profile.sh                                   # SQLite, realistic workload, 10 s of samples
#   bench/profile.sh --seconds 20 --storage postgres
#   bench/profile.sh --keep-data DIR ...               # keep perf.data and the stacks in DIR
#   bench/profile.sh --phase latency --storage postgres # the latency phase instead (single events
#                                                      # at --rate per second, 500 by default)
#
# Every other argument goes to bench/run.sh. Needs `perf` (Debian: linux-perf; installed with
# apt-get when missing and this is root).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log() { printf '[profile.sh] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

SECONDS_TO_SAMPLE=10
STORAGE=sqlite
KEEP=""
PHASE=throughput
ARGS=()
while (($#)); do
    case "$1" in
        --seconds) [[ $# -ge 2 ]] || die "--seconds needs a value"; SECONDS_TO_SAMPLE=$2; shift 2 ;;
        --storage) [[ $# -ge 2 ]] || die "--storage needs a value"; STORAGE=$2; shift 2 ;;
        --keep-data) [[ $# -ge 2 ]] || die "--keep-data needs a directory"; KEEP=$2; shift 2 ;;
        --phase) [[ $# -ge 2 ]] || die "--phase needs throughput or latency"; PHASE=$2; shift 2 ;;
        -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) ARGS+=("$1"); shift ;;
    esac
done
[[ "$SECONDS_TO_SAMPLE" =~ ^[0-9]+$ ]] || die "--seconds must be a whole number"
[[ "$STORAGE" == sqlite || "$STORAGE" == postgres ]] || die "--storage must be sqlite or postgres"
[[ "$PHASE" == throughput || "$PHASE" == latency ]] || die "--phase must be throughput or latency"

if ! command -v perf >/dev/null 2>&1; then
    [[ $(id -u) -eq 0 ]] || die "perf is missing and this is not root to install it"
    log "installing linux-perf"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q linux-perf </dev/null >&2
fi
command -v perf >/dev/null 2>&1 || die "perf not found after installing linux-perf"

WORK=$(mktemp -d -t postback-profile.XXXXXX)
BENCH_PID=""
cleanup() {
    local rc=$?
    set +e
    if [[ -n "$BENCH_PID" ]] && kill -0 "$BENCH_PID" 2>/dev/null; then
        kill -TERM "$BENCH_PID" 2>/dev/null
        wait "$BENCH_PID" 2>/dev/null
    fi
    if [[ -n "$KEEP" ]]; then
        mkdir -p "$KEEP" && cp -r "$WORK"/. "$KEEP"/ && log "kept in $KEEP"
    fi
    rm -rf -- "$WORK"
    exit "$rc"
}
trap cleanup EXIT

BENCH_LOG="$WORK/bench.log"
# The phase sampled must outlast the sampling: enough events (or seconds) for the seconds asked.
if [[ "$PHASE" == latency ]]; then
    PHASE_ARGS=(--events 5000 --latency-seconds $((SECONDS_TO_SAMPLE + 3)))
    MARK=": latency: "
else
    PHASE_ARGS=(--latency-seconds 2)
    MARK=": throughput: "
fi
"$ROOT/bench/run.sh" --storage "$STORAGE" --cold 0 "${PHASE_ARGS[@]}" \
    --hub-env DOTNET_PerfMapEnabled=1 --hub-env DOTNET_EnableWriteXorExecute=0 \
    ${ARGS[@]+"${ARGS[@]}"} >"$BENCH_LOG" 2>&1 &
BENCH_PID=$!
log "benchmark started (log: $BENCH_LOG); waiting for its $PHASE phase"
until grep -q "$MARK" "$BENCH_LOG"; do
    kill -0 "$BENCH_PID" 2>/dev/null || { tail -n 30 "$BENCH_LOG" >&2; die "the benchmark ended before its $PHASE phase"; }
    sleep 0.2
done
HUB=$(grep -o "hub pid [0-9]*" "$BENCH_LOG" | tail -n 1 | awk '{print $3}')
[[ "$HUB" =~ ^[0-9]+$ ]] || die "could not find the hub's pid in the benchmark's log"
log "sampling hub $HUB for $SECONDS_TO_SAMPLE s"
perf record -F 999 -g -p "$HUB" -o "$WORK/perf.data" -- sleep "$SECONDS_TO_SAMPLE" >"$WORK/record.log" 2>&1 \
    || { cat "$WORK/record.log" >&2; die "perf record failed"; }
# perf reads the JIT's symbol map (/tmp/perf-<pid>.map) while the hub still runs.
perf script -i "$WORK/perf.data" -F comm,tid,ip,sym,dso 2>/dev/null >"$WORK/stacks.txt"
wait "$BENCH_PID" || log "WARNING: the benchmark exited with $?"
BENCH_PID=""
grep -E "end-to-end deliveries/s|CPU during throughput|latency p50|CPU during latency" "$BENCH_LOG" || true

/usr/bin/env python3 - "$WORK/stacks.txt" "$PHASE" <<'PY'
import re, sys, collections

METRICS = re.compile(r"\[OpenTelemetry[^\]]*\]|System\.Diagnostics\.Metrics\.|Postback\.Observability\.PostbackMetrics|"
                     r"HostingMetrics|KestrelMetrics|System\.Net\.Http\.Metrics\.|RuntimeMetrics")
samples = []
stack, head = [], None
for line in open(sys.argv[1], errors="replace"):
    if not line.strip():
        if head is not None:
            samples.append((head, stack))
        stack, head = [], None
    elif line[0] not in " \t":
        # "<thread name> <tid>": the name may hold spaces (".NET TP Worker").
        m = re.match(r"^(.*\S)\s+\d+\s*$", line.rstrip("\n"))
        head = m.group(1) if m else line.split()[0]
        stack = []
    else:
        stack.append(line.strip())
if head is not None:
    samples.append((head, stack))
n = len(samples)
if n == 0:
    sys.exit("no samples")

def pct(k):
    return f"{100.0 * k / n:5.1f} %"

print(f"\n== {n} samples of the hub during the {sys.argv[2]} phase ==")
threads = collections.Counter(h for h, _ in samples)
print("threads: " + ", ".join(f"{k} {pct(v)}" for k, v in threads.most_common(6)))
libs = collections.Counter()
for _, s in samples:
    if s:
        m = re.search(r"\(([^)]*)\)\s*$", s[0])
        lib = m.group(1).rsplit("/", 1)[-1] if m else "?"
        libs["JIT-compiled .NET code" if lib.startswith("[JIT]") or lib.startswith("perf-") else lib] += 1
print("libraries (leaf frame): " + ", ".join(f"{k} {pct(v)}" for k, v in libs.most_common(8)))

# Inclusive share of the hub's own methods (each counted once per sample).
own = collections.Counter()
for _, s in samples:
    seen = set()
    for f in s:
        m = re.search(r"\[Postback\] (Postback\.[\w.`+<>|]+::[\w<>`|]+|Postback\.[\w.`+<>|]+)", f)
        if m:
            name = re.sub(r"\+<(\w+)>d__\d+::MoveNext", r"::\1", m.group(1))
            if name not in seen:
                seen.add(name)
                own[name] += 1
print("\nthe hub's own methods, inclusive (async frames as their method):")
for name, v in own.most_common(25):
    print(f"  {pct(v)}  {name}")

# Two instrumentation frames wrap the work they measure (an HTTP request the hub sends, a
# request it serves): only their own code counts, when they are the innermost .NET frame.
WRAPPERS = re.compile(r"SendAsyncWithMetrics|HttpServerErrorTypeStartupFilter")

def is_metrics(stack):
    managed_below = False
    for f in stack:  # innermost first
        if WRAPPERS.search(f):
            if not managed_below:
                return True
        elif METRICS.search(f):
            return True
        if "::" in f and "[" in f:
            managed_below = True
    return False

metrics = sum(1 for _, s in samples if is_metrics(s))
print(f"\nmetrics: {metrics} of {n} samples ({100.0 * metrics / n:.2f} %) have a metrics frame on the stack "
      "(recording or exporting a measurement): the CPU metrics cost the hub")
PY
