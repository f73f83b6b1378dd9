#include <athanor/mapping/detail/object_pool.hpp>
#include <athanor/core/detail/hot.hpp>

#include <atomic>
#include <bit>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <utility>

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

struct Slab;

// At a chunk's start. `refs` is the number of live blocks, plus kOpen while a thread still
// cuts blocks from the chunk: that thread counts what it hands out in its cursor (no atomic
// operation per allocation) and settles the difference when it moves on.
struct ChunkHeader {
    std::atomic<std::uint32_t> refs;
    Slab* slab;  // the slab the chunk was cut from
};
constexpr std::size_t kHeader = 16;  // blocks stay 16-aligned
constexpr std::uint32_t kOpen = std::uint32_t{1} << 30;  // far above the blocks a chunk holds
static_assert((kPoolChunk & (kPoolChunk - 1)) == 0, "a chunk is found by masking a block's address");
static_assert(kHeader >= sizeof(ChunkHeader) && kPoolMaxBlock <= (kPoolChunk - kHeader) / 4);

// Chunks come from slabs of kSlabChunks, one aligned allocation each: an aligned allocation
// of glibc splits a larger free block and gives back the pieces around it, which at one per
// chunk (13,000 for a million objects, in a heap of a million freed strings) cost about as
// much time as the objects' own strings (1M rows: 7% of a query's loading). A slab goes
// back to the heap when its last chunk does, except one kept for the next chunk: a loop of
// small queries would otherwise free and allocate a slab per query, and glibc consolidates its
// whole heap on every free that large. Slabs, their free chunks, the list of slabs with one and
// the spare are shared by all threads under one mutex (taken once per chunk, not per object).
constexpr std::size_t kSlabChunks = kPoolSlab / kPoolChunk;
constexpr std::uint64_t kAllFree = (std::uint64_t{1} << kSlabChunks) - 1;
static_assert(kSlabChunks < 64, "a slab's free chunks are the bits of one word");
static_assert(kPoolSlab % kPoolChunk == 0);

struct Slab {
    char* base;                         // its first chunk
    std::uint64_t free_mask = kAllFree;  // bit i: chunk i is free
    Slab* prev = nullptr;               // in the list of slabs with a free chunk
    Slab* next = nullptr;
};

std::mutex slab_mutex;
Slab* with_free = nullptr;  // slabs with a free chunk and a used one
Slab* spare = nullptr;      // a slab whose chunks are all free, kept for the next one
std::atomic<std::size_t> chunks_in_use{0};

void link(Slab* s) noexcept {
    s->prev = nullptr;
    s->next = with_free;
    if (with_free) with_free->prev = s;
    with_free = s;
}

void unlink(Slab* s) noexcept {
    (s->prev ? s->prev->next : with_free) = s->next;
    if (s->next) s->next->prev = s->prev;
}

char* payload(ChunkHeader* c) noexcept { return reinterpret_cast<char*>(c) + kHeader; }

ChunkHeader* new_chunk() {
    Slab* s;
    char* mem;
    {
        std::lock_guard<std::mutex> lock(slab_mutex);
        s = with_free;
        if (!s && spare) {
            s = std::exchange(spare, nullptr);
            link(s);
        } else if (!s) {
            auto fresh = std::make_unique<Slab>();
            fresh->base = static_cast<char*>(::operator new(kPoolSlab, std::align_val_t{kPoolChunk}));
            ATHANOR_POOL_POISON(fresh->base, kPoolSlab);
            s = fresh.release();
            link(s);
        }
        const int i = std::countr_zero(s->free_mask);
        s->free_mask &= ~(std::uint64_t{1} << i);
        if (s->free_mask == 0) unlink(s);
        mem = s->base + static_cast<std::size_t>(i) * kPoolChunk;
    }
    ATHANOR_POOL_UNPOISON(mem, kHeader);  // the payload stays poisoned: each block is unpoisoned as it is handed out
    auto* c = ::new (mem) ChunkHeader{kOpen, s};
    chunks_in_use.fetch_add(1, std::memory_order_relaxed);
    return c;
}

void free_chunk(ChunkHeader* c) noexcept {
    Slab* s = c->slab;
    const auto i = static_cast<unsigned>((reinterpret_cast<char*>(c) - s->base) / kPoolChunk);
    c->~ChunkHeader();
    ATHANOR_POOL_POISON(c, kPoolChunk);
    chunks_in_use.fetch_sub(1, std::memory_order_relaxed);
    Slab* gone = nullptr;  // given back to the heap after the lock: free() may consolidate the heap
    {
        std::lock_guard<std::mutex> lock(slab_mutex);
        const bool was_full = s->free_mask == 0;
        s->free_mask |= std::uint64_t{1} << i;
        if (s->free_mask == kAllFree) {
            if (!was_full) unlink(s);
            if (spare) gone = s;
            else spare = s;
        } else if (was_full) {
            link(s);
        }
    }
    if (gone) {
        ATHANOR_POOL_UNPOISON(gone->base, kPoolSlab);
        ::operator delete(gone->base, std::align_val_t{kPoolChunk});
        delete gone;
    }
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
