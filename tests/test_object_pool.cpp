// The memory of loaded objects (mapping/detail/object_pool.hpp): blocks are distinct and keep
// what is written to them, freed memory goes back to the heap (a kept object holds no more
// than its chunk and slab), a freed chunk is taken again before a new slab, a loop that drops
// each object reuses one chunk, objects outlive the thread, session and registry that made
// them, and classes too big for a block still load.
#include "fixtures.hpp"
#include "heap_in_use.hpp"

#include <athanor/mapping/detail/object_pool.hpp>

#include <algorithm>
#include <cstring>
#include <random>
#include <thread>

#ifdef ATHANOR_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace {
using athanor::detail::kPoolChunk;
using athanor::detail::kPoolSlab;
using athanor::detail::pool_allocate;
using athanor::detail::pool_chunks_in_use;
using athanor::detail::pool_deallocate;

using testheap::heap_in_use;

void fill(void* p, std::size_t n, unsigned char tag) { std::memset(p, tag, n); }
bool holds(const void* p, std::size_t n, unsigned char tag) {
    const auto* b = static_cast<const unsigned char*>(p);
    return std::all_of(b, b + n, [tag](unsigned char c) { return c == tag; });
}

struct Customer {
    std::int64_t id = 0;
    std::string name, description;
};
// Larger than any pooled block: allocated by operator new, as before the pool.
struct Wide {
    std::int64_t id = 0;
    std::string name;
    char pad[1024] = {};
};
}  // namespace

TEST(ObjectPool, BlocksAreDistinctAlignedAndKeepWhatIsWrittenToThem) {
    constexpr std::size_t kSize = 88;  // a control block with a small object, rounded up to 96
    std::vector<void*> blocks;
    for (int i = 0; i < 5000; ++i) {
        void* p = pool_allocate(kSize);
        ASSERT_EQ(reinterpret_cast<std::uintptr_t>(p) % 16, 0u);
        fill(p, kSize, static_cast<unsigned char>(i));
        blocks.push_back(p);
    }
    for (std::size_t i = 0; i < blocks.size(); ++i)
        ASSERT_TRUE(holds(blocks[i], kSize, static_cast<unsigned char>(i))) << "block " << i << " was overwritten";
    std::vector<void*> sorted = blocks;
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t i = 1; i < sorted.size(); ++i)
        ASSERT_GE(static_cast<char*>(sorted[i]) - static_cast<char*>(sorted[i - 1]), 96) << "blocks overlap";
    // Other sizes come from other chunks and do not disturb these.
    void* small = pool_allocate(16);
    void* big = pool_allocate(athanor::detail::kPoolMaxBlock);
    fill(small, 16, 0xAB);
    fill(big, athanor::detail::kPoolMaxBlock, 0xCD);
    std::shuffle(blocks.begin(), blocks.end(), std::mt19937(7));
    for (void* p : blocks) pool_deallocate(p, kSize);
    EXPECT_TRUE(holds(small, 16, 0xAB));
    EXPECT_TRUE(holds(big, athanor::detail::kPoolMaxBlock, 0xCD));
    pool_deallocate(small, 16);
    pool_deallocate(big, athanor::detail::kPoolMaxBlock);
}

TEST(ObjectPool, FreedChunksGoBackAndALoopThatDropsEachObjectReusesOne) {
    const std::size_t before = pool_chunks_in_use();
    // Made and dropped one at a time (a loop of get()): one chunk serves the whole loop.
    for (int i = 0; i < 200000; ++i) pool_deallocate(pool_allocate(96), 96);
    EXPECT_LE(pool_chunks_in_use(), before + 1);
    // Made in batches and dropped together (a query per batch): the chunks go back, all but
    // the one still being cut from.
    for (int round = 0; round < 20; ++round) {
        std::vector<void*> batch;
        for (int i = 0; i < 10000; ++i) batch.push_back(pool_allocate(96));
        EXPECT_GE(pool_chunks_in_use(), before + 10000 * 96 / kPoolChunk);
        for (void* p : batch) pool_deallocate(p, 96);
        EXPECT_LE(pool_chunks_in_use(), before + 1);
    }
}

TEST(ObjectPool, AKeptObjectHoldsOnlyItsOwnChunkAndSlab) {
    const std::size_t before = pool_chunks_in_use();
    std::vector<void*> all, kept;
    all.reserve(100000);
    const long heap0 = heap_in_use();
    for (int i = 0; i < 100000; ++i) all.push_back(pool_allocate(96));
    const std::size_t full = pool_chunks_in_use();
    EXPECT_GE(full, before + 100000 * 96 / kPoolChunk);
    for (std::size_t i = 0; i < all.size(); ++i) {
        if (i % 10000 == 0) kept.push_back(all[i]);
        else pool_deallocate(all[i], 96);
    }
    // 10 objects kept: their 10 chunks stay (and the one still being cut from), no more; the
    // heap keeps their slabs (and a spare one), not the 9.6 MB the others took.
    EXPECT_LE(pool_chunks_in_use(), before + 11);
    if (heap0 >= 0) {
        EXPECT_LE(heap_in_use() - heap0, static_cast<long>(14 * kPoolSlab));  // + glibc's slack
    }
    for (void* p : kept) pool_deallocate(p, 96);
    EXPECT_LE(pool_chunks_in_use(), before + 1);
    if (heap0 >= 0) {  // and the heap has their slabs back, all but the open chunk's and the spare
        EXPECT_LE(heap_in_use() - heap0, static_cast<long>(2 * kPoolSlab + 4 * kPoolChunk));  // + glibc's slack
    }
}

TEST(ObjectPool, AFreeChunkOfASlabIsTakenBeforeANewSlab) {
    // Four chunks' worth of 256-byte blocks, every block of one chunk in the middle freed: the
    // next chunk taken is that one (no new slab, no heap growth), whichever thread takes it.
    constexpr std::size_t kSize = 256;
    const std::size_t per_chunk = (kPoolChunk - 16) / kSize;
    std::vector<void*> blocks;
    for (std::size_t i = 0; i < 4 * per_chunk; ++i) blocks.push_back(pool_allocate(kSize));
    auto chunk_of = [](void* p) { return reinterpret_cast<std::uintptr_t>(p) & ~std::uintptr_t{kPoolChunk - 1}; };
    const std::uintptr_t middle = chunk_of(blocks[per_chunk + per_chunk / 2]);
    std::vector<void*> rest;
    for (void* p : blocks)
        if (chunk_of(p) == middle) pool_deallocate(p, kSize);
        else rest.push_back(p);
    const long heap = heap_in_use();
    std::vector<void*> again;
    std::thread other([&] {
        for (std::size_t i = 0; i < per_chunk; ++i) again.push_back(pool_allocate(kSize));
    });
    other.join();
    EXPECT_TRUE(std::any_of(again.begin(), again.end(), [&](void* p) { return chunk_of(p) == middle; }))
        << "the freed chunk was not reused";
    if (heap >= 0) {
        EXPECT_LE(heap_in_use(), heap + static_cast<long>(kPoolChunk));
    }
    for (void* p : again) pool_deallocate(p, kSize);
    for (void* p : rest) pool_deallocate(p, kSize);
}

TEST(ObjectPool, BlocksOutliveTheThreadThatMadeThemAndAreFreedOnAnother) {
    const std::size_t before = pool_chunks_in_use();
    std::vector<void*> blocks;
    std::thread maker([&] {
        for (int i = 0; i < 20000; ++i) {
            void* p = pool_allocate(48);
            fill(p, 48, static_cast<unsigned char>(i));
            blocks.push_back(p);
        }
    });
    maker.join();  // its open chunk is closed at its exit; the blocks in it stay
    EXPECT_GE(pool_chunks_in_use(), before + 20000 * 48 / kPoolChunk);
    for (std::size_t i = 0; i < blocks.size(); ++i)
        ASSERT_TRUE(holds(blocks[i], 48, static_cast<unsigned char>(i)));
    std::thread a([&] {
        for (std::size_t i = 0; i < blocks.size(); i += 2) pool_deallocate(blocks[i], 48);
    });
    std::thread b([&] {
        for (std::size_t i = 1; i < blocks.size(); i += 2) pool_deallocate(blocks[i], 48);
    });
    a.join();
    b.join();
    EXPECT_EQ(pool_chunks_in_use(), before);  // nothing of the finished thread is left
}

namespace {
// Made before the thread's pool cursors, so destroyed after them: what its destructor
// allocates comes when the thread's cursors are gone.
struct AllocatesAtThreadExit {
    std::size_t* seen;
    ~AllocatesAtThreadExit() {
        void* p = pool_allocate(208);
        fill(p, 208, 0x5A);
        if (holds(p, 208, 0x5A)) *seen = pool_chunks_in_use();
        pool_deallocate(p, 208);
    }
};
}  // namespace

TEST(ObjectPool, AnObjectMadeWhileAThreadEndsStillGetsMemoryAndGivesItBack) {
    const std::size_t before = pool_chunks_in_use();
    std::size_t seen = 0;
    std::thread t([&] {
        thread_local AllocatesAtThreadExit late{nullptr};
        late.seen = &seen;
        pool_deallocate(pool_allocate(80), 80);  // the thread's cursors, made after `late`
    });
    t.join();
    // A chunk of its own while the block lived, the thread's open chunk (for 80 bytes) already
    // given back: with the cursors still there it would be two.
    EXPECT_EQ(seen, before + 1);
    EXPECT_EQ(pool_chunks_in_use(), before);  // and nothing left after
}

#ifdef ATHANOR_ASAN
TEST(ObjectPool, AFreedBlockIsPoisonedForAddressSanitizer) {
    void* p = pool_allocate(64);
    void* q = pool_allocate(64);
    EXPECT_FALSE(__asan_address_is_poisoned(p));
    pool_deallocate(p, 64);
    EXPECT_TRUE(__asan_address_is_poisoned(p));
    EXPECT_TRUE(__asan_address_is_poisoned(static_cast<char*>(p) + 63));
    EXPECT_FALSE(__asan_address_is_poisoned(q));
    pool_deallocate(q, 64);
}
#endif

class ObjectPoolSession : public ::testing::Test {
protected:
    sa::MetaData metadata;
    sa::Table& customer = metadata.table("customer", sa::Column("id", sa::Integer(), sa::primary_key()),
                                         sa::Column("name", sa::String(50)), sa::Column("description", sa::String()));
    std::shared_ptr<sa::Engine> engine = sa::create_engine("sqlite://");

    void SetUp() override {
        metadata.create_all(*engine);
        auto conn = engine->connect();
        std::vector<sa::Params> rows;
        for (int i = 1; i <= 3000; ++i)
            rows.push_back({{"id", i}, {"name", "customer " + std::to_string(i)}, {"description", std::string(40, 'd')}});
        conn.execute(customer.insert(), rows);
        conn.commit();
    }
    void map_customer(sa::Registry& registry) {
        registry.map_imperatively<Customer>(customer)
            .column("id", &Customer::id)
            .column("name", &Customer::name)
            .column("description", &Customer::description);
    }
};

TEST_F(ObjectPoolSession, LoadedObjectsStayValidAfterTheSessionAndRegistryAreGone) {
    std::vector<std::shared_ptr<Customer>> held;
    const std::size_t chunks = pool_chunks_in_use();
    {
        sa::Registry registry;
        map_customer(registry);
        sa::Session s(engine);
        held = s.query<Customer>().order_by(customer.c["id"]).all();
        ASSERT_EQ(held.size(), 3000u);
        EXPECT_GE(pool_chunks_in_use(), chunks + 3000 * sizeof(Customer) / kPoolChunk);  // they are the pool's
        EXPECT_EQ(s.get<Customer>(17).get(), held[16].get());  // the identity map's object
        s.close();
    }
    for (std::size_t i = 0; i < held.size(); ++i) {
        ASSERT_EQ(held[i]->id, static_cast<std::int64_t>(i + 1));
        ASSERT_EQ(held[i]->name, "customer " + std::to_string(i + 1));
        ASSERT_EQ(held[i]->description, std::string(40, 'd'));
    }
    held.clear();  // freed here, after their registry
}

TEST_F(ObjectPoolSession, ObjectsTheProgramDropsGiveTheirMemoryBackWithTheSession) {
    sa::Registry registry;
    map_customer(registry);
    const std::size_t chunks = pool_chunks_in_use();
    {
        sa::Session s(engine);
        std::int64_t sum = 0;
        for (const auto& c : s.query<Customer>().all()) sum += c->id;
        EXPECT_EQ(sum, 3000 * 3001 / 2);
        EXPECT_GE(pool_chunks_in_use(), chunks + 3000 * sizeof(Customer) / kPoolChunk);  // the session holds them
        for (std::int64_t id = 1; id <= 3000; ++id) ASSERT_EQ(s.get<Customer>(id)->id, id);  // no SQL, same objects
    }
    EXPECT_LE(pool_chunks_in_use(), chunks + 1);  // the chunk still being cut from, at most
}

TEST_F(ObjectPoolSession, AClassTooBigForABlockLoadsAsBefore) {
    static_assert(!athanor::detail::PoolAllocator<Wide>::pooled);
    sa::Registry registry;
    registry.map_imperatively<Wide>(customer).column("id", &Wide::id).column("name", &Wide::name);
    sa::Session s(engine);
    auto all = s.query<Wide>().order_by(customer.c["id"]).all();
    ASSERT_EQ(all.size(), 3000u);
    EXPECT_EQ(all.back()->name, "customer 3000");
    all.back()->name = "renamed";
    s.commit();
    EXPECT_EQ(s.get<Wide>(3000)->name, "renamed");
}

TEST_F(ObjectPoolSession, ObjectsLoadedOnManyThreadsAreFreedOnOthers) {
    sa::Registry registry;
    map_customer(registry);
    const std::string path = ::testing::TempDir() + "athanor_pool_threads_" + std::to_string(::getpid()) + ".db";
    std::remove(path.c_str());
    auto file_engine = sa::create_engine("sqlite:///" + path);
    metadata.create_all(*file_engine);
    {
        auto conn = file_engine->connect();
        std::vector<sa::Params> rows;
        for (int i = 1; i <= 2000; ++i) rows.push_back({{"id", i}, {"name", "c" + std::to_string(i)}, {"description", "d"}});
        conn.execute(customer.insert(), rows);
        conn.commit();
    }
    std::vector<std::vector<std::shared_ptr<Customer>>> loaded(4);
    std::vector<std::thread> loaders;
    for (int t = 0; t < 4; ++t)
        loaders.emplace_back([&, t] {
            sa::Session s(file_engine);
            loaded[static_cast<std::size_t>(t)] = s.query<Customer>().all();
        });
    for (auto& th : loaders) th.join();
    std::vector<std::thread> droppers;
    for (int t = 0; t < 4; ++t)
        droppers.emplace_back([&, t] {
            auto& mine = loaded[static_cast<std::size_t>((t + 1) % 4)];  // another thread's objects
            std::int64_t sum = 0;
            for (const auto& c : mine) sum += c->id;
            EXPECT_EQ(sum, 2000 * 2001 / 2);
            mine.clear();
        });
    for (auto& th : droppers) th.join();
    file_engine->dispose();
    std::remove(path.c_str());
}
