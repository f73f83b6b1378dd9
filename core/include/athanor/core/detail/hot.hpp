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
/// v.resize(n) as a call (see size_scratch()).
template <class Vector>
[[gnu::noinline, gnu::cold]] void resize_out_of_line(Vector& v, std::size_t n) {
    v.resize(n);
}
/// Gives a hot function's scratch vector n elements, to be written in place: the vector's
/// growth code (tens of bytes of cold instructions, which clear() + push_back() put in the
/// middle of the lines a lookup runs) stays out of the function; a loop of one shape never
/// reaches it after the first call.
template <class Vector>
inline void size_scratch(Vector& v, std::size_t n) {
    if (v.size() != n) [[unlikely]]
        resize_out_of_line(v, n);
}
}  // namespace athanor::detail
