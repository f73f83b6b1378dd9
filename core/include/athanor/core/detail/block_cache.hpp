// Internal: a per-thread cache of small freed blocks, for the buffers of Params.
//
// A program inserting in batches (executemany, bulk_insert_mappings) builds a thousand Params,
// hands them over and lets them go, then builds the next thousand. Each Params has one small
// buffer; glibc keeps only seven freed blocks of a size at hand (its tcache), so from the
// eighth on every buffer of the next batch came from malloc's slow path (its bins, with
// coalescing when freed). This cache keeps the freed buffers, by size class of 64 bytes up to
// kBlockCacheMaxBlock, in a list per thread, and hands them out again first.
//
// Bounds: a thread keeps at most its budget: kBlockCacheMinBytes at first, growing by each
// block the cache hands out again, up to kBlockCacheMaxBytes; beyond it a freed block goes back
// to the heap. So a thread that built one large batch once keeps little (blocks kept and never
// reused would split the heap's free space), and one inserting batch after batch soon keeps a
// whole batch. What a thread keeps is freed when it exits. Larger blocks bypass the cache.
// Under AddressSanitizer the cache is off (every block is new'd and deleted), so a use after
// free is still reported.
//
// Thread-safety: each thread has its own lists; a block may be freed on any thread (it joins
// that thread's lists). Allocation throws std::bad_alloc as operator new does.
#pragma once

#include <cstddef>
#include <new>

namespace athanor::detail {

inline constexpr std::size_t kBlockCacheMaxBlock = 640;
inline constexpr std::size_t kBlockCacheMinBytes = std::size_t{16} << 10;
inline constexpr std::size_t kBlockCacheMaxBytes = std::size_t{256} << 10;

/// A block of at least `bytes`; over kBlockCacheMaxBlock, straight from operator new.
void* block_cache_allocate(std::size_t bytes);
/// Frees a block block_cache_allocate(bytes) returned (the same `bytes`), from any thread.
void block_cache_free(void* p, std::size_t bytes) noexcept;
/// Bytes this thread's cache holds, and may hold (for the tests).
std::size_t block_cache_held() noexcept;
std::size_t block_cache_budget() noexcept;

/// A std allocator over the block cache (stateless: all instances are equal).
template <class T>
struct CachedAllocator {
    using value_type = T;
    CachedAllocator() noexcept = default;
    template <class U>
    CachedAllocator(const CachedAllocator<U>&) noexcept {}
    T* allocate(std::size_t n) {
        if (n > static_cast<std::size_t>(-1) / sizeof(T)) throw std::bad_array_new_length();
        return static_cast<T*>(block_cache_allocate(n * sizeof(T)));
    }
    void deallocate(T* p, std::size_t n) noexcept { block_cache_free(p, n * sizeof(T)); }
    template <class U>
    friend bool operator==(const CachedAllocator&, const CachedAllocator<U>&) noexcept {
        return true;
    }
};

}  // namespace athanor::detail
