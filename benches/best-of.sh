# Sourced by the benches: `best_of NAME COMMAND...` runs COMMAND $reps
# times under /usr/bin/time and appends "NAME<TAB>seconds<TAB>peak RSS KB"
# of the fastest run to $results (and prints it). Needs $work, $reps and
# $results set; a failing run stops the bench with its last words.
best_of() {
    local name="$1" best="" rss="" t m
    shift
    for _ in $(seq 1 "$reps"); do
        /usr/bin/time -f "%e %M" -o "$work/time.out" "$@" >/dev/null 2>"$work/stderr.out" \
            || { tail -5 "$work/stderr.out" >&2; exit 1; }
        read -r t m < <(tail -1 "$work/time.out")
        if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best="$t" rss="$m"; fi
    done
    printf '%s\t%s\t%s\n' "$name" "$best" "$rss" | tee -a "$results"
}
