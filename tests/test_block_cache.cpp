// The buffers of Params (core/detail/block_cache.hpp): batch after batch of Params reuses the
// buffers of the batch before, one large batch leaves little behind, what a thread keeps is
// bounded and given back when it exits, a Params may die on another thread than the one that
// made it, and large Params bypass the cache. Params keep their values through all of it.
#include <athanor/core/detail/asan.hpp>
#include <athanor/core/value.hpp>

#include <gtest/gtest.h>

#include "heap_in_use.hpp"

#include <set>
#include <string>
#include <thread>
#include <vector>

namespace sa = athanor;
using athanor::detail::block_cache_budget;
using athanor::detail::block_cache_held;
using athanor::detail::kBlockCacheMinBytes;
using athanor::detail::kBlockCacheMaxBytes;

namespace {

using testheap::heap_in_use;

sa::Params row(int i) {
    sa::Params p;
    p.reserve(2);
    p.set("name", "customer name " + std::to_string(i));
    p.set("description", "customer description " + std::to_string(i));
    return p;
}

std::vector<sa::Params> batch(int from, int n) {
    std::vector<sa::Params> rows;
    rows.reserve(static_cast<std::size_t>(n));
    for (int i = from; i < from + n; ++i) rows.push_back(row(i));
    return rows;
}

const void* buffer_of(const sa::Params& p) { return &*p.begin(); }

void expect_rows(const std::vector<sa::Params>& rows, int from) {
    for (std::size_t k = 0; k < rows.size(); ++k) {
        const int i = from + static_cast<int>(k);
        ASSERT_EQ(rows[k].size(), 2u);
        EXPECT_EQ(rows[k].at("name").as_text(), "customer name " + std::to_string(i));
        EXPECT_EQ(rows[k].at("description").as_text(), "customer description " + std::to_string(i));
    }
}

}  // namespace

TEST(BlockCache, BatchAfterBatchReusesTheBuffersOfTheBatchBefore) {
    std::thread t([] {  // a thread of its own: a cache that starts empty
        std::set<const void*> before;
        std::size_t reused = 0;
        for (int round = 0; round < 8; ++round) {
            auto rows = batch(round * 1000, 1000);
            expect_rows(rows, round * 1000);
            reused = 0;
            for (const auto& p : rows) reused += before.count(buffer_of(p));
            before.clear();
            for (const auto& p : rows) before.insert(buffer_of(p));
        }
#ifdef ATHANOR_ASAN
        EXPECT_EQ(block_cache_held(), 0u);  // off: every buffer is new'd and deleted
        (void)reused;
#else
        // The budget doubles with each batch (16 KiB, then what was reused on top): by the
        // eighth batch every buffer is one of the batch before.
        EXPECT_EQ(reused, 1000u);
        EXPECT_GE(block_cache_budget(), 1000u * 192);
#endif
    });
    t.join();
}

TEST(BlockCache, OneLargeBatchLeavesLittleBehind) {
    std::size_t held = 0;
    std::thread t([&] {
        { auto rows = batch(0, 20000); }  // 20000 buffers, none of them handed out again
        held = block_cache_held();
    });
    t.join();
    EXPECT_LE(held, kBlockCacheMinBytes);
}

TEST(BlockCache, WhatAThreadKeepsIsBoundedAndFreedWhenItExits) {
    const long before = heap_in_use();
    std::size_t held_in_thread = 0;
    std::thread t([&] {
        for (int round = 0; round < 12; ++round) {
            auto rows = batch(0, 5000);  // 5000 buffers of 192 bytes: more than the bound
        }
        held_in_thread = block_cache_held();
    });
    t.join();
    EXPECT_LE(held_in_thread, kBlockCacheMaxBytes);
#ifndef ATHANOR_ASAN
    EXPECT_GT(held_in_thread, kBlockCacheMaxBytes / 2);
#endif
    if (before >= 0) {
        EXPECT_LT(heap_in_use() - before, 64 * 1024);  // the thread's cache went with it
    }
}

TEST(BlockCache, ParamsMadeOnOneThreadDieOnAnother) {
    std::vector<sa::Params> rows;
    std::thread t([&] { rows = batch(0, 3000); });
    t.join();
    expect_rows(rows, 0);
    rows.clear();  // freed into this thread's cache
    auto again = batch(5, 3000);
    expect_rows(again, 5);
}

TEST(BlockCache, LargeParamsBypassTheCache) {
    sa::Params p;
    for (int i = 0; i < 200; ++i) p.set("c" + std::to_string(i), i);
    ASSERT_EQ(p.size(), 200u);
    sa::Params copy = p;
    EXPECT_TRUE(copy == p);
    EXPECT_TRUE(p.erase("c7"));
    EXPECT_EQ(p.find("c7"), nullptr);
    EXPECT_EQ(copy.at("c199").as_int(), 199);
}
