#include <athanor/mapping/detail/object_pool.hpp>
#include <athanor/core/detail/hot.hpp>

#include <atomic>
#include <cstdint>
#include <new>

#ifdef ATHANOR_ASAN
#include <sanitizer/asan_interface.h>
#define ATHANOR_POOL_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define ATHANOR_POOL_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define ATHANOR_POOL_POISON(p, n) ((void)(p), (void)(n))
#define ATHANOR_POOL_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace athanor::detail {
namespace {

// At a chunk's start. `refs` is the number of live blocks, plus kOpen while a thread still
// cuts blocks from the chunk: that thread counts what it hands out in its cursor (no atomic
// operation per allocation) and settles the difference when it moves on.
struct ChunkHeader {
    std::atomic<std::uint32_t> refs;
};
constexpr std::size_t kHeader = 16;  // blocks stay 16-aligned
constexpr std::uint32_t kOpen = std::uint32_t{1} << 30;  // far above the blocks a chunk holds
static_assert((kPoolChunk & (kPoolChunk - 1)) == 0, "a chunk is found by masking a block's address");
static_assert(kHeader >= sizeof(ChunkHeader) && kPoolMaxBlock <= (kPoolChunk - kHeader) / 4);

std::atomic<std::size_t> chunks_in_use{0};

char* payload(ChunkHeader* c) noexcept { return reinterpret_cast<char*>(c) + kHeader; }

ChunkHeader* new_chunk() {
    void* mem = ::operator new(kPoolChunk, std::align_val_t{kPoolChunk});
    auto* c = ::new (mem) ChunkHeader{kOpen};
    chunks_in_use.fetch_add(1, std::memory_order_relaxed);
    ATHANOR_POOL_POISON(payload(c), kPoolChunk - kHeader);  // each block is unpoisoned as it is handed out
    return c;
}

void free_chunk(ChunkHeader* c) noexcept {
    ATHANOR_POOL_UNPOISON(payload(c), kPoolChunk - kHeader);
    c->~ChunkHeader();
    ::operator delete(c, std::align_val_t{kPoolChunk});
    chunks_in_use.fetch_sub(1, std::memory_order_relaxed);
}

// One thread's chunk for one block size.
struct Cursor {
    ChunkHeader* chunk = nullptr;
    char* next = nullptr;
    char* end = nullptr;
    std::uint32_t given = 0;  // blocks handed out from `chunk`

    // Stops cutting from `chunk`: its count becomes its live blocks. True when that is none:
    // then no block of it is reachable and the caller owns it.
    bool close() noexcept {
        const std::uint32_t drop = kOpen - given;
        return chunk->refs.fetch_sub(drop, std::memory_order_acq_rel) == drop;
    }

    void refill() {
        if (chunk && close()) {
            // Every object cut from it has died (a loop of get() that drops each object): reuse
            // the chunk instead of freeing it and allocating another. Its blocks are all poisoned.
            chunk->refs.store(kOpen, std::memory_order_relaxed);
        } else {
            chunk = nullptr;  // the old one now belongs to its live blocks; new_chunk() may throw
            chunk = new_chunk();
        }
        next = payload(chunk);
        end = reinterpret_cast<char*>(chunk) + kPoolChunk;
        given = 0;
    }
};

thread_local bool cursors_gone = false;  // constant-initialized: readable after ~Cursors

struct Cursors {
    Cursor by_size[kPoolMaxBlock / 16];
    ~Cursors() {
        for (Cursor& c : by_size)
            if (c.chunk && c.close()) free_chunk(c.chunk);
        cursors_gone = true;
    }
};
thread_local Cursors cursors;

}  // namespace

ATHANOR_HOT void* pool_allocate(std::size_t bytes) {
    bytes = (bytes + 15) & ~std::size_t{15};
    if (cursors_gone) {
        // An object made while this thread's locals are being destroyed (by a static destructor,
        // say): a chunk of its own, closed at once, freed with the object.
        Cursor one;
        one.refill();
        one.given = 1;
        (void)one.close();
        ATHANOR_POOL_UNPOISON(one.next, bytes);
        return one.next;
    }
    Cursor& c = cursors.by_size[bytes / 16 - 1];
    if (static_cast<std::size_t>(c.end - c.next) < bytes) c.refill();
    void* p = c.next;
    c.next += bytes;
    ++c.given;
    ATHANOR_POOL_UNPOISON(p, bytes);
    return p;
}

ATHANOR_HOT void pool_deallocate(void* p, std::size_t bytes) noexcept {
    ATHANOR_POOL_POISON(p, (bytes + 15) & ~std::size_t{15});
    auto* c = reinterpret_cast<ChunkHeader*>(reinterpret_cast<std::uintptr_t>(p) & ~std::uintptr_t{kPoolChunk - 1});
    if (c->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) free_chunk(c);
}

std::size_t pool_chunks_in_use() noexcept { return chunks_in_use.load(std::memory_order_relaxed); }

}  // namespace athanor::detail
