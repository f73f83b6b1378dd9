// Internal: ATHANOR_HOT marks a function that runs once per row or per object on the common
// paths (a get(), a query's rows, a flush's statements). GCC and Clang place such functions
// together in .text.hot, so the few kilobytes a lookup runs share instruction-cache lines and
// sets instead of being spread across the library among code that runs once per session; a
// lookup's code is large enough that, spread out, it evicts SQLite's own from the cache. Each
// starts on a cache line (a lookup runs the first lines of most of them). Their rare branches
// go out of line ([[unlikely]], noinline helpers) so the lines a lookup runs stay few.
#pragma once

#include <cstddef>

#if defined(__GNUC__) || defined(__clang__)
#define ATHANOR_HOT __attribute__((hot, aligned(64)))
#else
#define ATHANOR_HOT
#endif

namespace athanor::detail {
/// v.resize(n) as a call: a hot function that sizes a scratch vector once and then writes it
/// in place keeps the vector's growth code (tens of bytes of cold instructions in the middle of
/// its own, the lines a lookup runs) out of its body.
template <class Vector>
[[gnu::noinline, gnu::cold]] void resize_out_of_line(Vector& v, std::size_t n) {
    v.resize(n);
}
}  // namespace athanor::detail
