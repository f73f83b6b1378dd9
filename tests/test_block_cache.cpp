// The buffers of Params (core/detail/block_cache.hpp): a batch of Params built after another
// reuses that batch's buffers, what a thread keeps is bounded and given back when it exits,
// a Params may die on another thread than the one that made it, and large Params bypass the
// cache. Params keep their values through all of it.
#include <athanor/core/detail/asan.hpp>
#include <athanor/core/value.hpp>

#include <gtest/gtest.h>

#include "heap_in_use.hpp"

#include <set>
#include <string>
#include <thread>
#include <vector>

namespace sa = athanor;
using athanor::detail::block_cache_held;
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

TEST(BlockCache, NextBatchOfParamsReusesTheBuffersOfTheBatchBefore) {
    std::set<const void*> first;
    {
        auto rows = batch(0, 1000);
        expect_rows(rows, 0);
        for (const auto& p : rows) first.insert(buffer_of(p));
    }
    auto rows = batch(1000, 1000);
    expect_rows(rows, 1000);
    std::size_t reused = 0;
    for (const auto& p : rows) reused += first.count(buffer_of(p));
#ifdef ATHANOR_ASAN
    EXPECT_EQ(block_cache_held(), 0u);  // off: every buffer is new'd and deleted
    (void)reused;
#else
    EXPECT_EQ(reused, 1000u);
#endif
}

TEST(BlockCache, WhatAThreadKeepsIsBoundedAndFreedWhenItExits) {
    const long before = heap_in_use();
    std::size_t held_in_thread = 0;
    std::thread t([&] {
        { auto rows = batch(0, 20000); }  // 20000 buffers of 192 bytes: more than the bound
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
