// Internal: ATHANOR_ASAN is defined when AddressSanitizer instruments the build (GCC or Clang),
// for the allocators that keep freed memory (the object pool, the block cache): they poison it
// or step aside, so a use after free is still reported.
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define ATHANOR_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ATHANOR_ASAN 1
#endif
#endif
