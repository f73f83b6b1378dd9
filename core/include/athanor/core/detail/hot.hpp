// Internal: ATHANOR_HOT marks a function that runs once per row or per object on the common
// paths (a get(), a query's rows, a flush's statements). GCC and Clang place such functions
// together in .text.hot, so the few kilobytes a lookup runs share instruction-cache lines and
// sets instead of being spread across the library among code that runs once per session; a
// lookup's code is large enough that, spread out, it evicts SQLite's own from the cache. Each
// starts on a cache line (a lookup runs the first lines of most of them). Their rare branches
// go out of line ([[unlikely]], noinline helpers) so the lines a lookup runs stay few.
#pragma once

#if defined(__GNUC__) || defined(__clang__)
#define ATHANOR_HOT __attribute__((hot, aligned(64)))
#else
#define ATHANOR_HOT
#endif
