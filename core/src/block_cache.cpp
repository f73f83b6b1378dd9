#include <athanor/core/detail/asan.hpp>
#include <athanor/core/detail/block_cache.hpp>
#include <athanor/core/detail/hot.hpp>

#include <new>

namespace athanor::detail {
namespace {

#ifndef ATHANOR_ASAN
constexpr std::size_t kClass = 64;  // size classes of 64, 128, ... kBlockCacheMaxBlock bytes
constexpr std::size_t kClasses = kBlockCacheMaxBlock / kClass;
static_assert(kBlockCacheMaxBlock % kClass == 0);

std::size_t class_of(std::size_t bytes) noexcept { return bytes == 0 ? 0 : (bytes - 1) / kClass; }
std::size_t size_of_class(std::size_t c) noexcept { return (c + 1) * kClass; }

struct FreeBlock {
    FreeBlock* next;
};

struct Cache {
    FreeBlock* head[kClasses] = {};
    std::size_t held = 0;
    std::size_t budget = kBlockCacheMinBytes;
    ~Cache();
};

// Trivially destructible, so it can still be read while the thread's other thread_locals (and,
// on the main thread, static objects holding Params) are destroyed after the cache.
thread_local bool cache_gone = false;
thread_local Cache cache;

Cache::~Cache() {
    for (std::size_t c = 0; c < kClasses; ++c)
        while (FreeBlock* b = head[c]) {
            head[c] = b->next;
            ::operator delete(b);
        }
    held = 0;
    cache_gone = true;
}
#endif

}  // namespace

ATHANOR_HOT void* block_cache_allocate(std::size_t bytes) {
#ifndef ATHANOR_ASAN
    if (bytes <= kBlockCacheMaxBlock) {
        const std::size_t c = class_of(bytes);
        if (!cache_gone) {
            Cache& k = cache;
            if (FreeBlock* b = k.head[c]) {
                k.head[c] = b->next;
                k.held -= size_of_class(c);
                if (k.budget < kBlockCacheMaxBytes) k.budget += size_of_class(c);  // in use: may keep more
                return b;
            }
        }
        return ::operator new(size_of_class(c));  // the whole class: it may be reused for any size of it
    }
#endif
    // Under AddressSanitizer the exact size, so a write past it is still reported.
    return ::operator new(bytes == 0 ? 1 : bytes);
}

ATHANOR_HOT void block_cache_free(void* p, std::size_t bytes) noexcept {
    if (!p) return;
#ifndef ATHANOR_ASAN
    if (bytes <= kBlockCacheMaxBlock && !cache_gone) {
        const std::size_t c = class_of(bytes);
        Cache& k = cache;
        if (k.held + size_of_class(c) <= k.budget) {
            k.head[c] = ::new (p) FreeBlock{k.head[c]};
            k.held += size_of_class(c);
            return;
        }
    }
#else
    (void)bytes;
#endif
    ::operator delete(p);  // plain, not sized: clang before 19 leaves sized deallocation off
}

std::size_t block_cache_held() noexcept {
#ifndef ATHANOR_ASAN
    if (!cache_gone) return cache.held;
#endif
    return 0;
}

std::size_t block_cache_budget() noexcept {
#ifndef ATHANOR_ASAN
    if (!cache_gone) return cache.budget;
#endif
    return 0;
}

}  // namespace athanor::detail
