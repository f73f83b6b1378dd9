// Shared by the allocator tests: bytes of glibc's heap in use.
#pragma once

#include <athanor/core/detail/asan.hpp>

#include <malloc.h>

namespace testheap {
// -1 where a sanitizer's allocator stands in for glibc's.
inline long heap_in_use() {
#if defined(ATHANOR_ASAN) || defined(__SANITIZE_THREAD__)
    return -1;
#else
    struct mallinfo2 mi = mallinfo2();
    return static_cast<long>(mi.uordblks + mi.hblkhd);
#endif
}
}  // namespace testheap
