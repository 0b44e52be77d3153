#!/usr/bin/env python3
"""Summarises a callgrind output file per frame: total instructions, self instructions by crate
group, the most expensive functions, and calls to the allocator.

    callgrind_summary.py CALLGRIND_OUT FRAMES [--top N]

Used by bench/profile-record.sh. Reads the file format directly (name compression, `calls=`
lines whose next cost line is inclusive and therefore not self cost).
"""
import re
import sys
from collections import Counter, defaultdict

ALLOC_FNS = {"malloc", "calloc", "realloc", "posix_memalign", "aligned_alloc", "memalign"}
CRATE = re.compile(r"\b(liverec_\w+|tokio_util|tokio|bytes|mio|std|core|alloc|hashbrown|tracing\w*|"
                   r"sqlx\w*|parking_lot\w*|futures\w*|flume|libsqlite3\w*|hyper|axum)::")


def parse(path):
    names = {}  # (kind, id) -> name, for name compression
    self_cost = Counter()
    obj_of = {}
    calls_to = Counter()
    fn = ob = None
    cfn = None
    skip_next_cost = False

    def resolve(kind, rest):
        m = re.match(r"\((\d+)\)(?:\s+(.*))?$", rest)
        if not m:
            return rest.strip()
        key = (kind, m.group(1))
        if m.group(2) is not None:
            names[key] = m.group(2).strip()
        return names.get(key, rest)

    with open(path, errors="replace") as f:
        for line in f:
            c = line[0] if line else ""
            if c.isdigit() or c in "+-*":
                if skip_next_cost:
                    skip_next_cost = False
                    continue
                parts = line.split()
                if len(parts) >= 2 and fn is not None:
                    self_cost[fn] += int(parts[1])
                continue
            if line.startswith("fn="):
                fn = resolve("fn", line[3:].strip())
                obj_of.setdefault(fn, ob)
            elif line.startswith("ob="):
                ob = resolve("ob", line[3:].strip())
            elif line.startswith("cob="):
                resolve("ob", line[4:].strip())
            elif line.startswith("cfn="):
                cfn = resolve("fn", line[4:].strip())
            elif line.startswith(("cfi=", "cfl=")):
                pass
            elif line.startswith("calls="):
                count = int(line[6:].split()[0])
                if cfn is not None:
                    calls_to[cfn] += count
                skip_next_cost = True
    return self_cost, obj_of, calls_to


def group(name, obj):
    m = CRATE.search(name)
    if m:
        return m.group(1)
    base = (obj or "?").rsplit("/", 1)[-1]
    if base.startswith("libc"):
        return "libc (malloc/free, memcpy, …)"
    if base.startswith("ld-linux"):
        return "ld.so"
    return f"other in {base}"


def main():
    path, frames = sys.argv[1], int(sys.argv[2])
    top = int(sys.argv[sys.argv.index("--top") + 1]) if "--top" in sys.argv else 25
    self_cost, obj_of, calls_to = parse(path)
    total = sum(self_cost.values())
    print(f"instructions in the window: {total:,}  = {total / frames:,.0f} per frame")
    groups = defaultdict(int)
    for name, cost in self_cost.items():
        groups[group(name, obj_of.get(name))] += cost
    print("self instructions per frame by crate (inlined code counts where it is inlined):")
    for g, cost in sorted(groups.items(), key=lambda kv: -kv[1]):
        if cost / frames >= 20:
            print(f"  {cost / frames:8,.0f}  {100 * cost / total:5.1f} %  {g}")
    allocs = sum(n for name, n in calls_to.items() if name in ALLOC_FNS)
    detail = ", ".join(f"{name} {n / frames:.2f}" for name, n in calls_to.items() if name in ALLOC_FNS and n)
    print(f"allocator calls per frame: {allocs / frames:.2f} ({detail})")
    print(f"top {top} functions by self instructions per frame:")
    for name, cost in self_cost.most_common(top):
        print(f"  {cost / frames:8,.0f}  {name[:150]}")


if __name__ == "__main__":
    main()
