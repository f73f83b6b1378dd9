// The memory of the objects a mapper makes: every object a query or get() loads comes from
// its mapper's factory, which allocates it (with its shared_ptr control block) through
// PoolAllocator.
//
// Blocks are cut from 16 KiB chunks by moving a pointer forward, per thread and per size
// class, instead of one malloc each. A load of many rows then allocates once per chunk, its
// objects lie side by side (a later walk over them, or a run of identity-map hits, reads
// consecutive memory), and freeing an object is a decrement of its chunk's count. A chunk is
// free again when its last object is freed; a freed block is not reused by itself, but a chunk
// whose objects have all died by the time its thread moves on to a new one is reused whole.
// Chunks come from 256 KiB slabs (16 chunks, one aligned allocation of the heap each), shared
// by all threads: a free chunk of a slab is the next one any thread takes, and a slab goes back
// to the heap when its last chunk is free. So an object the program keeps holds its chunk for
// the pool and its slab for the heap until it goes: the trade CPython's object allocator makes
// with its pools and arenas (16 KiB and 1 MiB since 3.10; 4 KiB and 256 KiB before).
//
// Blocks larger than kPoolMaxBlock, or aligned beyond 16, come from operator new as before.
// Under AddressSanitizer a freed block is poisoned, so a use after free is still reported.
//
// Thread-safety: each thread allocates from its own chunks; an object may be freed on any
// thread. pool_allocate throws std::bad_alloc as operator new does.
#pragma once

#include <athanor/core/detail/asan.hpp>  // ATHANOR_ASAN: freed blocks are poisoned

#include <cstddef>
#include <memory>

namespace athanor::detail {

inline constexpr std::size_t kPoolChunk = 16384;  // bytes; chunks are aligned to their size
inline constexpr std::size_t kPoolMaxBlock = 512;
inline constexpr std::size_t kPoolSlab = 16 * kPoolChunk;  // bytes of the heap a slab takes

/// A block of `bytes` (1..kPoolMaxBlock; rounded up to 16), 16-aligned.
void* pool_allocate(std::size_t bytes);
/// Frees a block pool_allocate returned, from any thread.
void pool_deallocate(void* p, std::size_t bytes) noexcept;
/// Chunks allocated and not yet given back, over all threads (for tests and measurements).
std::size_t pool_chunks_in_use() noexcept;

/// The allocator a mapper's factory gives std::allocate_shared: stateless, so every instance
/// frees what any other allocated.
template <class T>
struct PoolAllocator {
    using value_type = T;
    static constexpr bool pooled = sizeof(T) <= kPoolMaxBlock && alignof(T) <= 16;

    PoolAllocator() noexcept = default;
    template <class U>
    PoolAllocator(const PoolAllocator<U>&) noexcept {}

    T* allocate(std::size_t n) {
        if constexpr (pooled)
            if (n == 1) return static_cast<T*>(pool_allocate(sizeof(T)));
        return std::allocator<T>{}.allocate(n);
    }
    void deallocate(T* p, std::size_t n) noexcept {
        if constexpr (pooled)
            if (n == 1) return pool_deallocate(p, sizeof(T));
        std::allocator<T>{}.deallocate(p, n);
    }
    template <class U>
    bool operator==(const PoolAllocator<U>&) const noexcept {
        return true;
    }
};

}  // namespace athanor::detail
