#!/usr/bin/python3
"""What distinct code run between two SQLite lookups costs them (README, Benchmarks).

Builds and runs a small C++ program: a raw sqlite3 lookup loop (the benchmark's raw_sqlite3
lookup: bind, step, read three columns into an object, reset) over a file database of n rows,
which calls between two lookups a function of straight-line additions (each instruction run
once per call, SIZE bytes of code), and the same additions run by a 30-instruction loop (136
bytes). For each size it prints the time a lookup takes alone, with each function, and each
function alone; the "interference" is the pair's time minus the two alone: what the lookup's
own code loses to the other code having run in between (instruction cache, micro-op cache,
branch predictors). Needs g++ and libsqlite3-dev (cmake/install_deps.sh installs both).

    /usr/bin/python3 bench/footprint_probe.py [--n 100000] [--repeat 5] [--keep DIR]
"""
import argparse
import pathlib
import subprocess
import sys
import tempfile

REGS = ["rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11"]
SIZES = [150, 300, 600, 1200, 1800, 2400]  # additions; 7 bytes each (addq $imm32, %reg)
CLOBBERS = ",".join(f'"{r}"' for r in REGS)


def additions(count: int, seed: int) -> str:
    lines = []
    for i in range(count):
        imm = ((i + seed) * 2654435761) % 100000 + 200  # an imm32 above 127: 7-byte instructions
        lines.append(f'"addq ${imm}, %%{REGS[i % len(REGS)]}\\n\\t"')
    return "\n".join(lines)


def functions() -> str:
    out = []
    for n in SIZES:
        out.append(f"__attribute__((noinline)) void straight{n}() {{ asm volatile(\n{additions(n, n)}\n::: {CLOBBERS}); }}")
        out.append(f"__attribute__((noinline)) void looped{n}() {{ for (int j = 0; j < {n // 30}; ++j) asm volatile(\n"
                   f"{additions(30, n)}\n::: {CLOBBERS}); }}")
    out.append("using Fn = void (*)();")
    out.append("Fn straights[] = {" + ", ".join(f"straight{n}" for n in SIZES) + "};")
    out.append("Fn loops[] = {" + ", ".join(f"looped{n}" for n in SIZES) + "};")
    out.append("int sizes[] = {" + ", ".join(str(7 * n) for n in SIZES) + "};")
    out.append(f"int nsizes = {len(SIZES)};")
    return "\n".join(out) + "\n"


MAIN = r"""
#include <sqlite3.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>
using Fn = void (*)();
extern Fn straights[];
extern Fn loops[];
extern int sizes[];
extern int nsizes;
struct Customer {
    long id;
    std::string name, description;
};
int main(int argc, char** argv) {
    const char* path = argv[1];
    const int n = std::atoi(argv[2]), repeat = std::atoi(argv[3]);
    unlink(path);
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK)
        return 1;
    sqlite3_exec(db, "CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT, description TEXT); BEGIN", 0, 0, 0);
    sqlite3_stmt* ins = nullptr;
    sqlite3_prepare_v2(db, "INSERT INTO customer VALUES (?, ?, ?)", -1, &ins, nullptr);
    for (int i = 1; i <= n; ++i) {
        std::string a = "customer name " + std::to_string(i), b = "customer description " + std::to_string(i);
        sqlite3_bind_int64(ins, 1, i);
        sqlite3_bind_text(ins, 2, a.data(), static_cast<int>(a.size()), SQLITE_STATIC);
        sqlite3_bind_text(ins, 3, b.data(), static_cast<int>(b.size()), SQLITE_STATIC);
        sqlite3_step(ins);
        sqlite3_reset(ins);
    }
    sqlite3_finalize(ins);
    sqlite3_exec(db, "COMMIT; BEGIN", 0, 0, 0);  // one read transaction, as the benchmark's
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db, "SELECT id, name, description FROM customer WHERE id = ?", -1, &st, nullptr);
    long sink = 0;
    auto run = [&](Fn between, bool lookup) {  // ns a lookup
        auto t0 = std::chrono::steady_clock::now();
        for (int i = 1; i <= n; ++i) {
            if (between) between();
            if (!lookup) continue;
            sqlite3_bind_int64(st, 1, i);
            if (sqlite3_step(st) == SQLITE_ROW) {
                Customer c{sqlite3_column_int64(st, 0), reinterpret_cast<const char*>(sqlite3_column_text(st, 1)),
                           reinterpret_cast<const char*>(sqlite3_column_text(st, 2))};
                sink += static_cast<long>(c.name.size());
            }
            sqlite3_reset(st);
        }
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / n * 1e9;
    };
    for (int w = 0; w < 2; ++w) run(nullptr, true);
    std::printf("%8s %9s | %14s %9s %13s | %14s %9s %13s\n", "code", "lookup", "+straight", "alone", "interference",
                "+loop", "alone", "interference");
    for (int k = 0; k < nsizes; ++k) {
        double raw = 0, with_s = 0, with_l = 0, s = 0, l = 0;
        for (int r = 0; r < repeat; ++r) {  // interleaved, so a slow moment falls on all alike
            raw += run(nullptr, true) / repeat;
            with_s += run(straights[k], true) / repeat;
            with_l += run(loops[k], true) / repeat;
            s += run(straights[k], false) / repeat;
            l += run(loops[k], false) / repeat;
        }
        std::printf("%6d B %6.0f ns | %11.0f ns %6.0f ns %+10.0f ns | %11.0f ns %6.0f ns %+10.0f ns\n", sizes[k], raw,
                    with_s, s, with_s - raw - s, with_l, l, with_l - raw - l);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    unlink(path);
    return sink == 42;  // keeps the reads
}
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100000, help="rows, and lookups a run (default 100000)")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each, averaged (default 5)")
    ap.add_argument("--keep", help="build in this directory and keep it (default: a temporary one)")
    args = ap.parse_args()
    if args.n < 1 or args.repeat < 1:
        ap.error("--n and --repeat must be at least 1")
    with tempfile.TemporaryDirectory() as tmp:
        d = pathlib.Path(args.keep or tmp)
        d.mkdir(parents=True, exist_ok=True)
        (d / "functions.cpp").write_text(functions())
        (d / "main.cpp").write_text(MAIN)
        exe = d / "footprint_probe"
        # -O2, and the functions in their own file: the compiler sees neither side of the call.
        subprocess.run(["g++", "-O2", "-std=c++17", "-o", str(exe), str(d / "main.cpp"), str(d / "functions.cpp"),
                        "-lsqlite3"], check=True)
        return subprocess.run([str(exe), str(d / "probe.db"), str(args.n), str(args.repeat)]).returncode


if __name__ == "__main__":
    sys.exit(main())
