// Faults and contention on real files: a loader killed with SIGKILL mid-transaction, and
// threads and processes updating one row through Sessions on a WAL database.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include "fixtures.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>
#include <signal.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace {

std::string temp_db(const std::string& name) {
    std::string path = ::testing::TempDir() + "athanor_" + name + "_" + std::to_string(::getpid()) + ".db";
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) std::remove((path + suffix).c_str());
    return path;
}

void remove_db(const std::string& path) {
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) std::remove((path + suffix).c_str());
}

struct Counter {
    std::int64_t id = 0;
    std::int64_t value = 0;
};

sa::MetaData counter_schema() {
    sa::MetaData m;
    m.table("counter", sa::Column("id", sa::Integer(), sa::primary_key()), sa::Column("value", sa::Integer()));
    return m;
}

// The counter table with its one row (id 1, value 0).
void create_counter(sa::Engine& e, const sa::MetaData& m) {
    m.create_all(e);
    auto c = e.connect();
    c.execute(m.get_table("counter").insert().values({{"id", 1}, {"value", 0}}));
    c.commit();
}

void map_counter(sa::Registry& r, const sa::MetaData& m) {
    r.map_imperatively<Counter>(m.get_table("counter")).column("id", &Counter::id).column("value", &Counter::value);
}

// One increment through a Session, retried while the database is busy: a writer that loses
// the race for the write lock (SQLITE_BUSY) or whose WAL snapshot went stale
// (SQLITE_BUSY_SNAPSHOT) rolls back and reads the row again.
void increment(const std::shared_ptr<sa::Engine>& engine, int& retries) {
    for (;;) {
        sa::Session s(engine);
        try {
            auto c = s.get<Counter>(1);
            c->value += 1;
            s.commit();
            return;
        } catch (const sa::OperationalError& e) {
            std::string what = e.what();
            if (what.find("locked") == std::string::npos && what.find("busy") == std::string::npos) throw;
            ++retries;
            s.rollback();
        }
    }
}

}  // namespace

class Durability : public ::testing::Test {
protected:
    sa::MetaData loads;
    sa::Table& rows = loads.table("rows", sa::Column("id", sa::Integer(), sa::primary_key()),
                                  sa::Column("batch", sa::Integer(), sa::nullable(false)),
                                  sa::Column("payload", sa::String(), sa::nullable(false)));
};

TEST_F(Durability, KilledLoaderLeavesWholeCommittedBatches) {
    constexpr int kBatch = 250, kRuns = 10;
    std::mt19937 rng(20261126);
    std::int64_t loaded = 0;
    for (int run = 0; run < kRuns; ++run) {
        std::string path = temp_db("crash");
        {
            auto e = sa::create_engine("sqlite:///" + path);
            loads.create_all(*e);
        }
        pid_t child = ::fork();
        ASSERT_GE(child, 0);
        if (child == 0) {
            // The loader: committed batches, forever, until killed. Never returns into gtest.
            try {
                auto e = sa::create_engine("sqlite:///" + path, {.wal = run % 2 == 0});
                auto c = e->connect();
                std::vector<sa::Params> batch(kBatch);
                for (int b = 0;; ++b) {
                    for (int i = 0; i < kBatch; ++i)
                        batch[static_cast<std::size_t>(i)] = {{"batch", b}, {"payload", std::string(64 + i % 200, 'x')}};
                    auto tx = c.begin();
                    c.execute(rows.insert(), batch);
                    tx.commit();
                }
            } catch (...) {
                ::_exit(3);
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20 + rng() % 300));
        ::kill(child, SIGKILL);
        int status = 0;
        ::waitpid(child, &status, 0);
        ASSERT_TRUE(WIFSIGNALED(status)) << "the loader stopped by itself (status " << status << ")";
        auto e = sa::create_engine("sqlite:///" + path);
        auto c = e->connect();
        EXPECT_EQ(c.execute(sa::text("PRAGMA integrity_check")).scalar<std::string>(), "ok") << "run " << run;
        auto n = c.execute(sa::text("SELECT count(*) FROM rows")).scalar<std::int64_t>();
        EXPECT_EQ(n % kBatch, 0) << "run " << run << ": " << n << " rows is not a whole number of batches";
        auto batches = c.execute(sa::text("SELECT count(DISTINCT batch) FROM rows")).scalar<std::int64_t>();
        EXPECT_EQ(batches * kBatch, n);
        loaded += n;
        c.close();
        e->dispose();
        remove_db(path);
    }
    EXPECT_GT(loaded, 0);  // the loader did commit batches before being killed
}

TEST_F(Durability, ThreadsIncrementOneRowOnAWalFile) {
    std::string path = temp_db("threads");
    auto engine = sa::create_engine("sqlite:///" + path, {.busy_timeout = 10, .wal = true});
    sa::MetaData m = counter_schema();
    create_counter(*engine, m);
    sa::Registry registry;
    map_counter(registry, m);
    constexpr int kThreads = 4, kEach = 100;
    std::atomic<int> retries{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&] {
            int mine = 0;
            try {
                for (int i = 0; i < kEach; ++i) increment(engine, mine);
            } catch (const std::exception& e) {
                ADD_FAILURE() << e.what();
            }
            retries += mine;
        });
    for (auto& th : threads) th.join();
    auto c = engine->connect();
    EXPECT_EQ(c.execute(sa::text("SELECT value FROM counter")).scalar<std::int64_t>(), kThreads * kEach)
        << "lost updates (" << retries.load() << " retries)";
    c.close();
    engine->dispose();
    remove_db(path);
}

TEST_F(Durability, ProcessesIncrementOneRowOnAWalFile) {
    std::string path = temp_db("procs");
    sa::MetaData m = counter_schema();
    {
        auto e = sa::create_engine("sqlite:///" + path, {.wal = true});
        create_counter(*e, m);
    }
    constexpr int kProcs = 3, kEach = 100;
    std::vector<pid_t> children;
    for (int p = 0; p < kProcs; ++p) {
        pid_t child = ::fork();
        ASSERT_GE(child, 0);
        if (child == 0) {
            int code = 0;
            try {
                // IMMEDIATE: the write lock is taken at BEGIN, so writers queue on the busy
                // timeout instead of failing to upgrade a read lock.
                auto e = sa::create_engine("sqlite:///" + path, {.busy_timeout = 10, .wal = true, .begin = "IMMEDIATE"});
                sa::Registry registry;
                map_counter(registry, m);
                int retries = 0;
                for (int i = 0; i < kEach; ++i) increment(e, retries);
            } catch (...) {
                code = 1;
            }
            ::_exit(code);
        }
        children.push_back(child);
    }
    for (pid_t child : children) {
        int status = 0;
        ::waitpid(child, &status, 0);
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "a writer process failed";
    }
    auto e = sa::create_engine("sqlite:///" + path);
    auto c = e->connect();
    EXPECT_EQ(c.execute(sa::text("SELECT value FROM counter")).scalar<std::int64_t>(), kProcs * kEach);
    c.close();
    e->dispose();
    remove_db(path);
}

TEST_F(Durability, ThreadsIncrementOneRowInMemory) {
    auto engine = sa::create_engine("sqlite://");
    sa::MetaData m = counter_schema();
    create_counter(*engine, m);
    sa::Registry registry;
    map_counter(registry, m);
    constexpr int kThreads = 4, kEach = 100;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&] {
            int retries = 0;
            try {
                for (int i = 0; i < kEach; ++i) increment(engine, retries);
            } catch (const std::exception& e) {
                ADD_FAILURE() << e.what();
            }
            EXPECT_EQ(retries, 0);  // the in-memory engine serializes transactions: no busy errors
        });
    for (auto& th : threads) th.join();
    auto c = engine->connect();
    EXPECT_EQ(c.execute(sa::text("SELECT value FROM counter")).scalar<std::int64_t>(), kThreads * kEach);
}

TEST_F(Durability, BusyFileIsAClearOperationalError) {
    std::string path = temp_db("busy");
    auto e = sa::create_engine("sqlite:///" + path, {.busy_timeout = 0.05});
    loads.create_all(*e);
    auto writer = e->connect();
    writer.execute(rows.insert().values({{"batch", 1}, {"payload", "x"}}));  // holds the write lock
    auto other = e->connect();
    try {
        other.execute(rows.insert().values({{"batch", 2}, {"payload", "y"}}));
        FAIL() << "expected OperationalError";
    } catch (const sa::OperationalError& err) {
        EXPECT_NE(std::string(err.what()).find("database is locked"), std::string::npos) << err.what();
        EXPECT_EQ(err.code(), 5);  // SQLITE_BUSY
    }
    other.close();
    writer.close();
    e->dispose();
    remove_db(path);
}
