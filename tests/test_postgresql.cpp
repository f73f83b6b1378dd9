// What only a server shows (issue 12): SQLSTATEs, lost connections and the pool, pipelined
// executemany, savepoints after a failed statement, run_transaction against real serialization
// failures, reflection through pg_catalog, types on the wire. Runs on the throwaway cluster
// (ctest's pg fixture); the rest of the suite runs on both backends.
#include "fixtures.hpp"

#include <atomic>
#include <barrier>
#include <cmath>
#include <thread>

namespace {
struct Acct {
    std::int64_t id = 0;
    std::string owner;
    std::int64_t balance = 0;
};
}  // namespace

class Postgres : public ::testing::Test, public UsersSchema {
protected:
    std::shared_ptr<sa::Engine> engine;
    void SetUp() override {
        if (!testdb::postgres()) GTEST_SKIP() << "needs the PostgreSQL cluster (ctest runs this as pg.*)";
        engine = testdb::engine();
        metadata.create_all(*engine);
    }
    std::int64_t count(const std::string& table) {
        auto c = engine->connect();
        return c.execute(sa::text("SELECT count(*) FROM " + table)).scalar<std::int64_t>();
    }
};

TEST_F(Postgres, ErrorsKeepTheirSqlstate) {
    auto c = engine->connect();
    auto expect = [&](const std::string& sql, const char* state, auto tag) {
        using E = typename decltype(tag)::type;
        try {
            c.execute(sa::text(sql));
            ADD_FAILURE() << "no error from " << sql;
        } catch (const E& e) {
            EXPECT_EQ(e.sqlstate(), state) << e.what();
            EXPECT_EQ(e.statement(), sql);
        } catch (const std::exception& e) {
            ADD_FAILURE() << sql << ": " << e.what();
        }
        c.rollback();
    };
    c.execute(users.insert(), {{"name", "ed"}});
    c.commit();
    expect("INSERT INTO users (name) VALUES ('ed')", "23505", std::type_identity<sa::IntegrityError>{});
    expect("INSERT INTO users (fullname) VALUES ('x')", "23502", std::type_identity<sa::IntegrityError>{});
    expect("INSERT INTO addresses (email, user_id) VALUES ('x', 99)", "23503", std::type_identity<sa::IntegrityError>{});
    expect("SELECT * FROM nope", "42P01", std::type_identity<sa::ProgrammingError>{});
    expect("SELEC 1", "42601", std::type_identity<sa::ProgrammingError>{});
    expect("SELECT 1/0", "22012", std::type_identity<sa::DataError>{});
    expect("SELECT 'abc'::integer", "22P02", std::type_identity<sa::DataError>{});
    expect("SET statement_timeout = 1; SELECT 1", "42601", std::type_identity<sa::ProgrammingError>{});
    // Every one of them is an athanor::Error, as a program catching them all at one place expects.
    try {
        c.execute(sa::text("SELECT * FROM nope"));
    } catch (const sa::Error& e) {
        EXPECT_NE(std::string(e.what()).find("(libpq.ProgrammingError) relation \"nope\" does not exist"),
                  std::string::npos) << e.what();
    }
}

TEST_F(Postgres, ALostConnectionIsOperationalErrorAndLeavesThePool) {
    std::int64_t victim;
    {
        auto c = engine->connect();
        victim = c.execute(sa::text("SELECT pg_backend_pid()")).scalar<std::int64_t>();
        c.commit();
    }  // back in the pool, idle
    {
        auto admin = sa::create_engine(testdb::pg_url());
        auto a = admin->connect();
        a.execute(sa::text("SELECT pg_terminate_backend(:p)"), {{"p", victim}});
        a.commit();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    {
        auto c = engine->connect();  // the pooled connection, now dead
        try {
            c.execute(sa::text("SELECT 1"));
            FAIL() << "a terminated connection answered";
        } catch (const sa::OperationalError& e) {
            EXPECT_TRUE(e.sqlstate().rfind("08", 0) == 0 || e.sqlstate().rfind("57", 0) == 0) << e.sqlstate();
        }
    }  // discarded, not returned to the pool
    auto c = engine->connect();
    EXPECT_EQ(c.execute(sa::text("SELECT 1")).scalar<std::int64_t>(), 1);
    EXPECT_NE(c.execute(sa::text("SELECT pg_backend_pid()")).scalar<std::int64_t>(), victim);
}

TEST_F(Postgres, PoolReusesConnections) {
    std::int64_t first;
    {
        auto c = engine->connect();
        first = c.execute(sa::text("SELECT pg_backend_pid()")).scalar<std::int64_t>();
    }
    auto c = engine->connect();
    EXPECT_EQ(c.execute(sa::text("SELECT pg_backend_pid()")).scalar<std::int64_t>(), first);
    // Two at once are two server connections.
    auto d = engine->connect();
    EXPECT_NE(d.execute(sa::text("SELECT pg_backend_pid()")).scalar<std::int64_t>(), first);
}

TEST_F(Postgres, ExecutemanyIsPipelinedAndAtomicOnError) {
    auto c = engine->connect();
    std::vector<sa::Params> rows;
    for (int i = 0; i < 1500; ++i) rows.push_back({{"name", "u" + std::to_string(i)}});  // three chunks
    EXPECT_EQ(c.execute(users.insert(), rows).rowcount(), 1500);
    c.commit();
    EXPECT_EQ(count("users"), 1500);
    // A failure in the middle of a pipelined batch: an IntegrityError naming the failing row,
    // and nothing of the batch stays after rollback.
    std::vector<sa::Params> bad;
    for (int i = 0; i < 700; ++i) bad.push_back({{"name", i == 600 ? std::string("u5") : "v" + std::to_string(i)}});
    try {
        c.execute(users.insert(), bad);
        FAIL() << "the duplicate was accepted";
    } catch (const sa::IntegrityError& e) {
        EXPECT_EQ(e.sqlstate(), "23505");
        EXPECT_EQ(e.params(), "('u5',)");
    }
    c.rollback();
    EXPECT_EQ(count("users"), 1500);
    // The connection still works, pipeline mode left behind.
    EXPECT_EQ(c.execute(users.update().values({{"fullname", "F"}}).where(users.c["name"].like("u1%"))).rowcount(), 611);
}

TEST_F(Postgres, SavepointRecoversFromAFailedStatement) {
    auto c = engine->connect();
    c.execute(users.insert(), {{"name", "ed"}});
    {
        auto sp = c.begin_nested();
        EXPECT_THROW(c.execute(users.insert(), {{"name", "ed"}}), sa::IntegrityError);
        sp.rollback();  // ROLLBACK TO SAVEPOINT: the transaction is usable again
    }
    c.execute(users.insert(), {{"name", "wendy"}});
    c.commit();
    EXPECT_EQ(count("users"), 2);
}

TEST_F(Postgres, TypesOnTheWire) {
    using namespace std::chrono;
    sa::MetaData m;
    auto& t = m.table("typed", sa::Column("id", sa::Integer(), sa::primary_key()), sa::Column("b", sa::Boolean()),
                      sa::Column("ts", sa::DateTime()), sa::Column("d", sa::Date()), sa::Column("lb", sa::LargeBinary()),
                      sa::Column("n", sa::Numeric(10, 2)), sa::Column("f", sa::Float()), sa::Column("j", sa::JSON()),
                      sa::Column("big", sa::BigInteger()));
    m.create_all(*engine);
    auto c = engine->connect();
    sa::datetime whole = sys_days(2026y / November / 27d) + 5h;  // no fraction: the server prints none
    sa::Blob bytes{0, 1, 2, 0x5c, 0x78, 255};                        // includes "\x"
    auto id = c.execute(t.insert(), {{"b", true}, {"ts", whole}, {"d", sa::date{2026y / November / 27d}}, {"lb", bytes},
                                     {"n", 12.25}, {"f", -0.5}, {"j", nlohmann::json{{"k", {1, 2}}}},
                                     {"big", std::int64_t{1} << 40}})
                  .inserted_primary_key()
                  .at(0);
    auto row = c.execute(sa::select(t).where(t.c["id"] == id)).one();
    EXPECT_EQ(row["b"], sa::Value(1));  // booleans read as SQLite stores them
    EXPECT_EQ(row.get<sa::datetime>("ts"), whole);
    EXPECT_EQ(row["ts"], sa::Value(std::string("2026-11-27 05:00:00.000000")));  // athanor's DateTime text
    EXPECT_EQ(row.get<sa::date>("d"), sa::date{2026y / November / 27d});
    EXPECT_EQ(row.get<sa::Blob>("lb"), bytes);
    EXPECT_DOUBLE_EQ(row.get<double>("n"), 12.25);
    EXPECT_DOUBLE_EQ(row.get<double>("f"), -0.5);
    EXPECT_EQ(row.get<nlohmann::json>("j"), (nlohmann::json{{"k", {1, 2}}}));
    EXPECT_EQ(row.get<std::int64_t>("big"), std::int64_t{1} << 40);
    // Booleans compare with true_() and with a bound 1.
    EXPECT_EQ(c.execute(sa::select(sa::func::count()).select_from(t).where(t.c["b"] == true)).scalar<std::int64_t>(), 1);
}

TEST_F(Postgres, ReflectionReadsTheCatalog) {
    sa::MetaData r;
    r.reflect(*engine);
    ASSERT_EQ(r.tables().size(), 2u);
    const sa::Table& a = r.get_table("addresses");
    EXPECT_TRUE(a.column("id").autoincrement());  // SERIAL's nextval() is the autoincrement, not a default
    EXPECT_FALSE(a.column("id").server_default());
    EXPECT_EQ(a.column("email").type(), sa::String(100));
    EXPECT_FALSE(a.column("email").nullable());
    ASSERT_EQ(a.column("user_id").foreign_keys().size(), 1u);
    EXPECT_EQ(a.column("user_id").foreign_keys()[0].target(), "users.id");
    EXPECT_EQ(a.column("user_id").foreign_keys()[0].options().ondelete, "CASCADE");
    EXPECT_EQ(sa::create_table_sql(a, sa::postgresql_dialect()), sa::create_table_sql(addresses, sa::postgresql_dialect()));
    EXPECT_EQ(sa::create_index_sql(a, sa::postgresql_dialect()), sa::create_index_sql(addresses, sa::postgresql_dialect()));
    EXPECT_THROW(r.reflect(*engine, {"nope"}), sa::NoSuchTableError);
    // A hostile table name is a string literal in the catalog query, never SQL.
    EXPECT_THROW(r.reflect(*engine, {"x' OR '1'='1"}), sa::NoSuchTableError);
}

TEST_F(Postgres, RunTransactionRetriesSerializationFailures) {
    sa::DeclarativeBase Base;
    Base.declare<Acct>("accts", sa::mapped_column("id", &Acct::id, sa::primary_key()),
                       sa::mapped_column("owner", &Acct::owner, sa::String(20)),
                       sa::mapped_column("balance", &Acct::balance));
    auto serializable = sa::create_engine(testdb::pg_url(), {.isolation_level = "SERIALIZABLE"});
    Base.metadata.create_all(*serializable);
    sa::sessionmaker Session({.bind = serializable});
    {
        sa::Session s = Session();
        s.add(std::make_shared<Acct>(Acct{.owner = "a", .balance = 100}));
        s.add(std::make_shared<Acct>(Acct{.owner = "b", .balance = 100}));
        s.commit();
    }
    // Write skew: each transaction reads both balances, then withdraws from its own account
    // if the total allows. Under SERIALIZABLE one of the two must fail with 40001; the
    // barrier makes both read before either writes, the first time round.
    std::barrier both_read(2);
    std::atomic<int> attempts{0};
    auto withdraw = [&](const std::string& owner) {
        bool first = true;
        sa::run_transaction(Session, [&](sa::Session& s) {
            ++attempts;
            std::int64_t total = 0;
            for (auto& a : s.query<Acct>().all()) total += a->balance;
            if (first) {
                first = false;
                both_read.arrive_and_wait();
            }
            if (total >= 150) s.query<Acct>().filter_by({{"owner", owner}}).one()->balance -= 150;
        }, {.max_retries = 5, .initial_backoff = std::chrono::milliseconds(1)});
    };
    std::thread ta(withdraw, "a"), tb(withdraw, "b");
    ta.join();
    tb.join();
    EXPECT_EQ(attempts.load(), 3);  // one of them ran twice
    sa::Session s = Session();
    std::int64_t total = 0;
    for (auto& a : s.query<Acct>().all()) total += a->balance;
    EXPECT_EQ(total, 50);  // exactly one withdrawal: the retry saw the other's
}

TEST_F(Postgres, RunTransactionGivesUpAfterMaxRetries) {
    sa::sessionmaker Session({.bind = engine});
    int attempts = 0;
    try {
        sa::run_transaction(Session, [&](sa::Session& s) {
            ++attempts;
            // A real serialization failure, raised by the server on demand.
            s.execute(sa::text("DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = 'serialization_failure'; END $$"));
        }, {.max_retries = 2, .initial_backoff = std::chrono::milliseconds(1)});
        FAIL() << "no error";
    } catch (const sa::OperationalError& e) {
        EXPECT_EQ(e.sqlstate(), "40001");
    }
    EXPECT_EQ(attempts, 3);
    attempts = 0;
    EXPECT_THROW(sa::run_transaction(Session, [&](sa::Session& s) {
        ++attempts;
        s.execute(sa::text("SELECT * FROM nope"));
    }), sa::ProgrammingError);
    EXPECT_EQ(attempts, 1);  // not a conflict: never retried
}

TEST_F(Postgres, FlushAndBulkPathsPipelineAndGetTheirKeys) {
    sa::DeclarativeBase Base;
    Base.declare<Acct>("accts", sa::mapped_column("id", &Acct::id, sa::primary_key()),
                       sa::mapped_column("owner", &Acct::owner, sa::String(20)),
                       sa::mapped_column("balance", &Acct::balance));
    Base.metadata.create_all(*engine);
    auto key_of = [&](sa::Session& s, const std::string& owner) {
        return s.scalar<std::int64_t>(sa::text("SELECT id FROM accts WHERE owner = :o"), {{"o", owner}});
    };
    // The unit of work: 1200 new objects of one shape, sent in pipelined chunks; each object
    // gets the key its own row got.
    sa::Session s(engine);
    std::vector<std::shared_ptr<Acct>> objs;
    for (int i = 0; i < 1200; ++i) objs.push_back(std::make_shared<Acct>(Acct{.owner = "o" + std::to_string(i), .balance = i}));
    for (auto& o : objs) s.add(o);
    s.commit();
    for (int i : {0, 1, 599, 1199}) EXPECT_EQ(objs[static_cast<std::size_t>(i)]->id, key_of(s, "o" + std::to_string(i)));
    EXPECT_EQ(s.get<Acct>(objs[700]->id), objs[700]);  // in the identity map under its key
    // bulk_save_objects and bulk_insert_mappings(return_defaults) write the keys back too.
    std::vector<std::shared_ptr<Acct>> more;
    for (int i = 0; i < 600; ++i) more.push_back(std::make_shared<Acct>(Acct{.owner = "b" + std::to_string(i)}));
    s.bulk_save_objects(more);
    std::vector<sa::Params> rows;
    for (int i = 0; i < 600; ++i) rows.push_back({{"owner", "m" + std::to_string(i)}, {"balance", 1}});
    s.bulk_insert_mappings<Acct>(rows, true);
    s.commit();
    EXPECT_EQ(more[599]->id, key_of(s, "b599"));
    EXPECT_EQ(rows[599].find("id")->as_int(), key_of(s, "m599"));
    std::vector<sa::Params> ups;
    for (int i = 0; i < 600; ++i) ups.push_back({{"id", more[static_cast<std::size_t>(i)]->id}, {"balance", -7}});
    s.bulk_update_mappings<Acct>(ups);
    s.commit();
    EXPECT_EQ(s.scalar<std::int64_t>(sa::text("SELECT count(*) FROM accts WHERE balance = -7")), 600);
    // A failure inside a pipelined flush: nothing written, keys undone, rollback recovers.
    auto a = std::make_shared<Acct>(Acct{.owner = "x1"});
    auto dup = std::make_shared<Acct>(Acct{.id = objs[3]->id, .owner = "dup"});
    auto b = std::make_shared<Acct>(Acct{.owner = "x2"});
    s.add_all({a, b});
    s.merge(dup);  // an UPDATE of the persistent row, not an insert
    s.add(std::make_shared<Acct>(Acct{.id = objs[5]->id + 100000, .owner = "late"}));
    s.commit();
    EXPECT_GT(a->id, 0);
    sa::Session s2(engine);
    auto c1 = std::make_shared<Acct>(Acct{.owner = "c1"});
    auto clash = std::make_shared<Acct>(Acct{.id = objs[0]->id, .owner = "clash"});  // duplicate key
    s2.add_all({c1, clash});
    EXPECT_THROW(s2.flush(), sa::IntegrityError);
    EXPECT_EQ(c1->id, 0);
    s2.rollback();
    EXPECT_EQ(count("accts") , 1200 + 600 + 600 + 3);
}

TEST_F(Postgres, DroppedStatementsAreDeallocatedOnTheServer) {
    // Prepared statements live on the server until DEALLOCATE: the ones the cache drops (and
    // one-off copies) go between transactions, so a long-lived connection does not pile them up.
    auto small = sa::create_engine(testdb::pg_url(), {.statement_cache_size = 3});
    auto c = small->connect();
    for (int i = 0; i < 20; ++i) c.execute(sa::text("SELECT " + std::to_string(i)));
    c.commit();
    auto held = c.execute(sa::text("SELECT count(*) FROM pg_prepared_statements")).scalar<std::int64_t>();
    EXPECT_LE(held, 4);  // at most the cache's three and this query
    // A statement still streaming rows is not dropped: a second, nested use gets its own copy.
    auto outer = c.execute(sa::select(users.c["id"]));
    auto inner = c.execute(sa::select(users.c["id"]));
    EXPECT_FALSE(outer.fetchone());
    EXPECT_FALSE(inner.fetchone());
}

TEST_F(Postgres, CommitAfterAFailedStatementIsAnErrorNotASilentRollback) {
    auto c = engine->connect();
    c.execute(users.insert(), {{"name", "kept?"}});
    EXPECT_THROW(c.execute(sa::text("SELECT * FROM nope")), sa::ProgrammingError);
    // PostgreSQL would answer this COMMIT with ROLLBACK and no error; athanor says so.
    try {
        c.commit();
        FAIL() << "COMMIT of an aborted transaction passed silently";
    } catch (const sa::InternalError& e) {
        EXPECT_EQ(e.sqlstate(), "25P02");
    }
    c.rollback();
    EXPECT_EQ(count("users"), 0);
}

TEST_F(Postgres, QueuedExecutionsStreamAndReportTheFailingRow) {
    auto c = engine->connect();
    sa::Params shape{{"name", sa::Value()}};
    auto cur = c.cursor(users.insert(), &shape);
    ASSERT_TRUE(cur.pipelined());
    std::vector<sa::Value> names;
    for (int i = 0; i < 1100; ++i) names.emplace_back("n" + std::to_string(i));
    names[1050] = sa::Value("n7");  // a duplicate, in the third window
    for (auto& v : names) cur.queue({&v});
    EXPECT_EQ(cur.queued(), 1100u);
    std::vector<std::int64_t> keys;
    try {
        cur.flush_queue(&keys);
        FAIL() << "the duplicate was accepted";
    } catch (const sa::IntegrityError& e) {
        EXPECT_EQ(e.sqlstate(), "23505");
        EXPECT_EQ(e.params(), "('n7',)");
    }
    EXPECT_EQ(cur.queued(), 0u);
    c.rollback();
    // Without a failure every key comes back, in order.
    names[1050] = sa::Value("n1050");
    for (auto& v : names) cur.queue({&v});
    keys.clear();
    EXPECT_EQ(cur.flush_queue(&keys), 1100);
    ASSERT_EQ(keys.size(), 1100u);
    EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
    EXPECT_EQ(c.execute(sa::select(users.c["name"]).where(users.c["id"] == keys[500])).scalar<std::string>(), "n500");
    // Another statement on the connection ends a stream first; its results (here: its
    // error) are kept for flush_queue.
    for (int i = 0; i < 5; ++i) cur.queue({&names[i]});  // names this transaction already holds
    try {
        c.execute(sa::text("SELECT 1"));
        FAIL() << "ran in an aborted transaction";
    } catch (const sa::InternalError& e) {
        EXPECT_EQ(e.sqlstate(), "25P02");
    }
    EXPECT_THROW(cur.flush_queue(), sa::IntegrityError);
    c.rollback();
    for (int i = 0; i < 5; ++i) cur.queue({&names[i]});
    EXPECT_EQ(c.execute(sa::text("SELECT 1")).scalar<std::int64_t>(), 1);  // a clean stream ended first
    EXPECT_EQ(cur.flush_queue(), 5);
}
