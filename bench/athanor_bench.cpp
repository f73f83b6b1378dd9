// athanor-bench: bulk-operation benchmarks after SQLAlchemy's examples/performance. Every ORM
// and Core figure is printed beside a raw figure measured in the same run, as a ratio: raw
// sqlite3 on SQLite, raw libpq on PostgreSQL (--db postgresql://...), doing the same work.
//
//   athanor-bench [--suite NAME] [--test NAME] [-n N] [--db file|memory|postgresql://...]
//                 [--repeat R] [--json FILE] [--compare OLD.json] [--scale N1,N2,...] [--echo]
//
// --scale runs the suites at each size and prints each test's cost per row at each: a path
// whose cost grows faster than its rows shows as a rising line (bench/plot.py draws it).
#include <athanor/athanor.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include <libpq-fe.h>
#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>
#include <nlohmann/json.hpp>
#include <sqlite3.h>

#ifndef ATHANOR_BENCH_CODE_PAD
#define ATHANOR_BENCH_CODE_PAD 0  // set by bench/CMakeLists.txt
#endif

namespace sa = athanor;
using Clock = std::chrono::steady_clock;

namespace {

struct Customer {
    std::int64_t id = 0;
    std::string name;
    std::string description;
};

// The relationships suites: parents with 10 children each.
struct BChild;
struct BParent {
    std::int64_t id = 0;
    std::string name;
    sa::Collection<BChild> children;
};
struct BChild {
    std::int64_t id = 0;
    std::optional<std::int64_t> parent_id;
    std::string name;
    sa::Ref<BParent> parent;
};

struct Options {
    std::string suite, test;
    std::int64_t n = 100000;
    bool file = true;
    std::string pg_url;  // --db postgresql://...: the server under test
    int repeat = 3;
    int warmup = 1;  // untimed rounds per suite before the timed ones
    std::string json;
    std::string compare;  // an earlier --json file to compare ratios with
    std::vector<std::int64_t> scale;  // --scale: the sizes to run at (else just n)
    bool echo = false;
};

// ---- the database under test ------------------------------------------------------------------

// SQLite: both kinds are files so the raw sqlite3 baseline and athanor see the same database;
// "memory" puts the file on tmpfs (/dev/shm), so no disk is involved. PostgreSQL: the server
// of the URL, its tables dropped and created again before each test.
struct Db {
    std::string path;
    std::string pg;  // non-empty: the PostgreSQL URL
    std::string url() const { return pg.empty() ? "sqlite:///" + path : pg; }
    bool postgres() const { return !pg.empty(); }
};

struct Schema {
    sa::DeclarativeBase Base;
    Schema() {
        Base.declare<Customer>("customer",
            sa::mapped_column("id", &Customer::id, sa::primary_key()),
            sa::mapped_column("name", &Customer::name, sa::String(255)),
            sa::mapped_column("description", &Customer::description, sa::String(255)));
        Base.declare<BParent>("parent",
            sa::mapped_column("id", &BParent::id, sa::primary_key()),
            sa::mapped_column("name", &BParent::name, sa::String(255)),
            sa::relationship("children", &BParent::children, sa::back_populates(&BChild::parent),
                             sa::cascade("all, delete-orphan")));
        Base.declare<BChild>("child",
            sa::mapped_column("id", &BChild::id, sa::primary_key()),
            sa::mapped_column("parent_id", &BChild::parent_id, sa::ForeignKey("parent.id"), sa::index()),
            sa::mapped_column("name", &BChild::name, sa::String(255)),
            sa::relationship("parent", &BChild::parent, sa::back_populates(&BParent::children)));
    }
    const sa::Table& customer() const { return Base.metadata.get_table("customer"); }
};

std::string name_of(std::int64_t i) { return "customer name " + std::to_string(i); }
std::string desc_of(std::int64_t i) { return "customer description " + std::to_string(i); }

// A row's parameters, built with set() so the strings are moved in, not copied (a braced
// Params{{...}} copies its initializer list).
sa::Params customer_params(std::int64_t i) {
    sa::Params p;
    p.reserve(2);
    p.set("name", name_of(i));
    p.set("description", desc_of(i));
    return p;
}

// A raw sqlite3 handle for the baselines (and for setup that must not involve athanor).
struct Raw {
    sqlite3* db = nullptr;
    explicit Raw(const Db& d) {
        // The same open flags athanor uses for a pooled file connection.
        if (sqlite3_open_v2(d.path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                            nullptr) != SQLITE_OK)
            throw std::runtime_error("open");
        exec("SELECT count(*) FROM sqlite_master");  // read the schema before the clock matters
    }
    ~Raw() { sqlite3_close(db); }
    void exec(const char* sql) {
        char* err = nullptr;
        if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
            std::string m = err ? err : "?";
            sqlite3_free(err);
            throw std::runtime_error(m);
        }
    }
};

// The raw baselines' customer INSERT: one prepared statement in one transaction, each row's
// two strings bound in place (SQLITE_STATIC: they outlive the step).
struct RawCustomerInserts {
    Raw r;
    sqlite3_stmt* st = nullptr;
    explicit RawCustomerInserts(const Db& d) : r(d) {
        r.exec("BEGIN");
        sqlite3_prepare_v2(r.db, "INSERT INTO customer (name, description) VALUES (?, ?)", -1, &st, nullptr);
    }
    ~RawCustomerInserts() { sqlite3_finalize(st); }
    void insert(const std::string& a, const std::string& b) {
        sqlite3_bind_text(st, 1, a.data(), static_cast<int>(a.size()), SQLITE_STATIC);
        sqlite3_bind_text(st, 2, b.data(), static_cast<int>(b.size()), SQLITE_STATIC);
        sqlite3_step(st);
        sqlite3_reset(st);
    }
    void commit() {
        sqlite3_finalize(st);
        st = nullptr;
        r.exec("COMMIT");
    }
};

// A raw libpq connection for the PostgreSQL baselines: what a careful hand-written client
// does, prepared statements, text parameters, pipeline mode for batches.
struct RawPg {
    PGconn* conn = nullptr;
    explicit RawPg(const Db& d) {
        sa::URL u = sa::make_url(d.pg);
        std::vector<std::pair<std::string, std::string>> kw;
        if (!u.host.empty()) kw.emplace_back("host", u.host);
        if (u.port) kw.emplace_back("port", std::to_string(*u.port));
        if (!u.username.empty()) kw.emplace_back("user", u.username);
        if (u.password) kw.emplace_back("password", *u.password);
        if (!u.database.empty()) kw.emplace_back("dbname", u.database);
        for (auto& [k, v] : u.query) kw.emplace_back(k, v);
        std::vector<const char*> keys, vals;
        for (auto& [k, v] : kw) {
            keys.push_back(k.c_str());
            vals.push_back(v.c_str());
        }
        keys.push_back(nullptr);
        vals.push_back(nullptr);
        conn = PQconnectdbParams(keys.data(), vals.data(), 0);
        if (PQstatus(conn) != CONNECTION_OK) throw std::runtime_error(PQerrorMessage(conn));
    }
    ~RawPg() { PQfinish(conn); }
    static void check(PGresult* r) {
        auto st = PQresultStatus(r);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
            std::string m = PQresultErrorMessage(r);
            PQclear(r);
            throw std::runtime_error(m);
        }
    }
    void exec(const char* sql) {
        PGresult* r = PQexec(conn, sql);
        check(r);
        PQclear(r);
    }
    void prepare(const char* name, const char* sql) {
        PGresult* r = PQprepare(conn, name, sql, 0, nullptr);
        check(r);
        PQclear(r);
    }
    PGresult* run(const char* name, std::initializer_list<const char*> params) {
        std::vector<const char*> v(params);
        PGresult* r = PQexecPrepared(conn, name, static_cast<int>(v.size()), v.data(), nullptr, nullptr, 0);
        check(r);
        return r;
    }
    // Pipeline mode: `send(i)` queues execution i of n; every result is read (and handed to
    // `take(i, result)` when given) after each 1000 executions' sync.
    template <class Send, class Take>
    void pipeline(std::int64_t n, Send send, Take take) {
        for (std::int64_t from = 0; from < n; from += 1000) {
            std::int64_t to = std::min(n, from + 1000);
            PQenterPipelineMode(conn);
            for (std::int64_t i = from; i < to; ++i) send(i);
            PQpipelineSync(conn);
            std::int64_t i = from;
            for (;;) {
                PGresult* r = PQgetResult(conn);
                if (!r) continue;
                if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
                    PQclear(r);
                    break;
                }
                check(r);
                take(i++, r);
                PQclear(r);
            }
            PQexitPipelineMode(conn);
        }
    }
    void send(const char* name, std::initializer_list<const char*> params) {
        std::vector<const char*> v(params);
        PQsendQueryPrepared(conn, name, static_cast<int>(v.size()), v.data(), nullptr, nullptr, 0);
    }
};

// ---- one test ----------------------------------------------------------------------------------

struct Context {
    const Options& opt;
    std::int64_t n;
    Db db;
    std::shared_ptr<sa::Engine> engine;  // for memory databases: shared by setup and test
    Schema* schema;
};

enum class On { any, sqlite, pg };

struct Test {
    std::string name;
    bool baseline;  // the raw figure of its suite (raw sqlite3 / raw libpq)
    std::function<void(Context&)> setup;  // not timed
    std::function<void(Context&)> run;    // timed
    On on = On::any;
};

struct Suite {
    std::string name;
    std::string doc;
    std::int64_t n_divisor = 1;  // single_inserts run fewer rows
    std::vector<Test> tests;
};

void create_table(Context& c) { c.schema->Base.metadata.create_all(*c.engine); }

void fill(Context& c) {
    create_table(c);
    auto conn = c.engine->connect();
    std::vector<sa::Params> rows;
    rows.reserve(static_cast<std::size_t>(c.n));
    for (std::int64_t i = 1; i <= c.n; ++i) rows.push_back({{"id", i}, {"name", name_of(i)}, {"description", desc_of(i)}});
    conn.execute(c.schema->customer().insert(), rows);
    conn.commit();
}

// n lookups of one customer by key with raw sqlite3, each read into a Customer: `sql` takes the
// key as its first parameter; with `limit`, two more bound once to 1 and 0 (LIMIT ? OFFSET ?).
void raw_lookups(Context& c, const char* sql, bool limit) {
    Raw r(c.db);
    r.exec("BEGIN");  // one read transaction, as athanor's connection holds one
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(r.db, sql, -1, &st, nullptr);
    if (limit) {  // bindings outlive sqlite3_reset()
        sqlite3_bind_int64(st, 2, 1);
        sqlite3_bind_int64(st, 3, 0);
    }
    for (std::int64_t i = 1; i <= c.n; ++i) {
        sqlite3_bind_int64(st, 1, i);
        if (sqlite3_step(st) == SQLITE_ROW) {
            Customer cu{sqlite3_column_int64(st, 0), reinterpret_cast<const char*>(sqlite3_column_text(st, 1)),
                        reinterpret_cast<const char*>(sqlite3_column_text(st, 2))};
            (void)cu;
        }
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    r.exec("COMMIT");
}

// ---- suites --------------------------------------------------------------------------------------

std::vector<Suite> suites() {
    std::vector<Suite> out;

    out.push_back({"bulk_inserts", "Insert n customers in batches of 1000", 1, {
        {"raw_libpq", true, create_table, [](Context& c) {
             RawPg r(c.db);
             r.exec("BEGIN");
             r.prepare("ins", "INSERT INTO customer (name, description) VALUES ($1, $2)");
             std::string a, b;
             r.pipeline(c.n, [&](std::int64_t i) {
                 a = name_of(i + 1);
                 b = desc_of(i + 1);
                 r.send("ins", {a.c_str(), b.c_str()});
             }, [](std::int64_t, PGresult*) {});
             r.exec("COMMIT");
         }, On::pg},
        // For reference: the same, fetching each new key by RETURNING, as the flush and
        // bulk_save_objects must (SQLite hands out the last rowid for nothing).
        {"raw_libpq_returning", false, create_table, [](Context& c) {
             RawPg r(c.db);
             r.exec("BEGIN");
             r.prepare("ins", "INSERT INTO customer (name, description) VALUES ($1, $2) RETURNING id");
             std::string a, b;
             std::vector<std::int64_t> ids(static_cast<std::size_t>(c.n));
             r.pipeline(c.n, [&](std::int64_t i) {
                 a = name_of(i + 1);
                 b = desc_of(i + 1);
                 r.send("ins", {a.c_str(), b.c_str()});
             }, [&](std::int64_t i, PGresult* res) { ids[static_cast<std::size_t>(i)] = std::strtoll(PQgetvalue(res, 0, 0), nullptr, 10); });
             r.exec("COMMIT");
         }, On::pg},
        {"raw_sqlite3", true, create_table, [](Context& c) {
             RawCustomerInserts r(c.db);
             for (std::int64_t i = 1; i <= c.n; ++i) {
                 std::string a = name_of(i), b = desc_of(i);
                 r.insert(a, b);
             }
             r.commit();
         }, On::sqlite},
        // For reference: the same, given each batch of 1000 rows built first (two strings a row,
        // held until the batch is sent), as bulk_insert_mappings and core_insert are given their
        // Params and as SQLAlchemy's raw DBAPI test hands executemany() a built list.
        {"raw_sqlite3_batches", false, create_table, [](Context& c) {
             RawCustomerInserts r(c.db);
             for (std::int64_t chunk = 0; chunk < c.n; chunk += 1000) {
                 std::vector<std::pair<std::string, std::string>> rows;
                 rows.reserve(1000);
                 for (std::int64_t i = chunk + 1; i <= std::min(c.n, chunk + 1000); ++i)
                     rows.emplace_back(name_of(i), desc_of(i));
                 for (const auto& [a, b] : rows) r.insert(a, b);
             }
             r.commit();
         }, On::sqlite},
        // For reference: the same batches as Params (as core_insert and bulk_insert_mappings
        // are given them), each value found by its name and bound by hand. What the API's list of
        // dicts costs by itself: a library with no overhead of its own would run at this ratio.
        {"raw_sqlite3_params", false, create_table, [](Context& c) {
             RawCustomerInserts r(c.db);
             for (std::int64_t chunk = 0; chunk < c.n; chunk += 1000) {
                 std::vector<sa::Params> rows;
                 rows.reserve(1000);
                 for (std::int64_t i = chunk + 1; i <= std::min(c.n, chunk + 1000); ++i)
                     rows.push_back(customer_params(i));
                 for (const auto& p : rows) r.insert(p.find("name")->as_text(), p.find("description")->as_text());
             }
             r.commit();
         }, On::sqlite},
        {"flush_no_pk", false, create_table, [](Context& c) {
             sa::Session s(c.engine);
             for (std::int64_t chunk = 0; chunk < c.n; chunk += 1000) {
                 for (std::int64_t i = chunk + 1; i <= std::min(c.n, chunk + 1000); ++i)
                     s.add(std::make_shared<Customer>(Customer{0, name_of(i), desc_of(i)}));
                 s.flush();
             }
             s.commit();
         }},
        {"flush_pk_given", false, create_table, [](Context& c) {
             sa::Session s(c.engine);
             for (std::int64_t chunk = 0; chunk < c.n; chunk += 1000) {
                 for (std::int64_t i = chunk + 1; i <= std::min(c.n, chunk + 1000); ++i)
                     s.add(std::make_shared<Customer>(Customer{i, name_of(i), desc_of(i)}));
                 s.flush();
             }
             s.commit();
         }},
        {"bulk_save_objects", false, create_table, [](Context& c) {
             sa::Session s(c.engine);
             for (std::int64_t chunk = 0; chunk < c.n; chunk += 1000) {
                 std::vector<std::shared_ptr<Customer>> objs;
                 for (std::int64_t i = chunk + 1; i <= std::min(c.n, chunk + 1000); ++i)
                     objs.push_back(std::make_shared<Customer>(Customer{0, name_of(i), desc_of(i)}));
                 s.bulk_save_objects(objs);
             }
             s.commit();
         }},
        {"bulk_insert_mappings", false, create_table, [](Context& c) {
             sa::Session s(c.engine);
             for (std::int64_t chunk = 0; chunk < c.n; chunk += 1000) {
                 std::vector<sa::Params> rows;
                 rows.reserve(1000);
                 for (std::int64_t i = chunk + 1; i <= std::min(c.n, chunk + 1000); ++i)
                     rows.push_back(customer_params(i));
                 s.bulk_insert_mappings<Customer>(rows);
             }
             s.commit();
         }},
        {"core_insert", false, create_table, [](Context& c) {
             auto conn = c.engine->connect();
             auto ins = c.schema->customer().insert();
             for (std::int64_t chunk = 0; chunk < c.n; chunk += 1000) {
                 std::vector<sa::Params> rows;
                 rows.reserve(1000);
                 for (std::int64_t i = chunk + 1; i <= std::min(c.n, chunk + 1000); ++i)
                     rows.push_back(customer_params(i));
                 conn.execute(ins, rows);
             }
             conn.commit();
         }},
    }});

    out.push_back({"bulk_updates", "Update n customers in batches of 1000", 1, {
        {"raw_libpq", true, fill, [](Context& c) {
             RawPg r(c.db);
             r.exec("BEGIN");
             r.prepare("sel", "SELECT id, name, description FROM customer WHERE id BETWEEN $1 AND $2");
             r.prepare("up", "UPDATE customer SET description=$1 WHERE id = $2");
             for (std::int64_t chunk = 0; chunk < c.n; chunk += 1000) {
                 std::string lo = std::to_string(chunk + 1), hi = std::to_string(chunk + 1000);
                 PGresult* res = r.run("sel", {lo.c_str(), hi.c_str()});
                 std::vector<Customer> batch;
                 for (int i = 0; i < PQntuples(res); ++i)
                     batch.push_back({std::strtoll(PQgetvalue(res, i, 0), nullptr, 10), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2)});
                 PQclear(res);
                 std::string id;
                 r.pipeline(static_cast<std::int64_t>(batch.size()), [&](std::int64_t i) {
                     auto& cu = batch[static_cast<std::size_t>(i)];
                     cu.description = "updated " + std::to_string(cu.id);
                     id = std::to_string(cu.id);
                     r.send("up", {cu.description.c_str(), id.c_str()});
                 }, [](std::int64_t, PGresult*) {});
             }
             r.exec("COMMIT");
         }, On::pg},
        {"raw_sqlite3", true, fill, [](Context& c) {
             Raw r(c.db);
             r.exec("BEGIN");
             sqlite3_stmt* sel = nullptr;
             sqlite3_stmt* up = nullptr;
             sqlite3_prepare_v2(r.db, "SELECT id, name, description FROM customer WHERE id BETWEEN ? AND ?", -1, &sel, nullptr);
             sqlite3_prepare_v2(r.db, "UPDATE customer SET description=? WHERE id = ?", -1, &up, nullptr);
             for (std::int64_t chunk = 0; chunk < c.n; chunk += 1000) {
                 sqlite3_bind_int64(sel, 1, chunk + 1);
                 sqlite3_bind_int64(sel, 2, chunk + 1000);
                 std::vector<Customer> batch;
                 while (sqlite3_step(sel) == SQLITE_ROW)
                     batch.push_back({sqlite3_column_int64(sel, 0),
                                      reinterpret_cast<const char*>(sqlite3_column_text(sel, 1)),
                                      reinterpret_cast<const char*>(sqlite3_column_text(sel, 2))});
                 sqlite3_reset(sel);
                 for (auto& cu : batch) {
                     cu.description = "updated " + std::to_string(cu.id);
                     sqlite3_bind_text(up, 1, cu.description.data(), static_cast<int>(cu.description.size()), SQLITE_STATIC);
                     sqlite3_bind_int64(up, 2, cu.id);
                     sqlite3_step(up);
                     sqlite3_reset(up);
                 }
             }
             sqlite3_finalize(sel);
             sqlite3_finalize(up);
             r.exec("COMMIT");
         }, On::sqlite},
        {"orm_flush", false, fill, [](Context& c) {
             sa::Session s(c.engine);
             auto id = sa::attr(&Customer::id);
             for (std::int64_t chunk = 0; chunk < c.n; chunk += 1000) {
                 for (auto& cu : s.query<Customer>().filter(id.between(chunk + 1, chunk + 1000)).all())
                     cu->description = "updated " + std::to_string(cu->id);
                 s.flush();
             }
             s.commit();
         }},
        {"bulk_update_mappings", false, fill, [](Context& c) {
             sa::Session s(c.engine);
             for (std::int64_t chunk = 0; chunk < c.n; chunk += 1000) {
                 std::vector<sa::Params> rows;
                 rows.reserve(1000);
                 for (std::int64_t i = chunk + 1; i <= std::min(c.n, chunk + 1000); ++i)
                     rows.push_back({{"id", i}, {"description", "updated " + std::to_string(i)}});
                 s.bulk_update_mappings<Customer>(rows);
             }
             s.commit();
         }},
        {"core_update", false, fill, [](Context& c) {
             auto conn = c.engine->connect();
             const auto& t = c.schema->customer();
             auto up = t.update().where(t.c["id"] == sa::bindparam("cid")).values({{"description", sa::bindparam("d")}});
             for (std::int64_t chunk = 0; chunk < c.n; chunk += 1000) {
                 std::vector<sa::Params> rows;
                 rows.reserve(1000);
                 for (std::int64_t i = chunk + 1; i <= std::min(c.n, chunk + 1000); ++i)
                     rows.push_back({{"cid", i}, {"d", "updated " + std::to_string(i)}});
                 conn.execute(up, rows);
             }
             conn.commit();
         }},
    }});

    out.push_back({"single_inserts", "One customer per session and commit (n/100 rows)", 100, {
        {"raw_libpq", true, create_table, [](Context& c) {
             RawPg r(c.db);
             r.prepare("ins", "INSERT INTO customer (name, description) VALUES ($1, $2)");
             for (std::int64_t i = 1; i <= c.n; ++i) {
                 r.exec("BEGIN");
                 std::string a = name_of(i), b = desc_of(i);
                 PQclear(r.run("ins", {a.c_str(), b.c_str()}));
                 r.exec("COMMIT");
             }
         }, On::pg},
        {"raw_sqlite3", true, create_table, [](Context& c) {
             Raw r(c.db);
             sqlite3_stmt* st = nullptr;
             sqlite3_prepare_v2(r.db, "INSERT INTO customer (name, description) VALUES (?, ?)", -1, &st, nullptr);
             for (std::int64_t i = 1; i <= c.n; ++i) {
                 r.exec("BEGIN");
                 std::string a = name_of(i), b = desc_of(i);
                 sqlite3_bind_text(st, 1, a.data(), static_cast<int>(a.size()), SQLITE_STATIC);
                 sqlite3_bind_text(st, 2, b.data(), static_cast<int>(b.size()), SQLITE_STATIC);
                 sqlite3_step(st);
                 sqlite3_reset(st);
                 r.exec("COMMIT");
             }
             sqlite3_finalize(st);
         }, On::sqlite},
        {"orm_commit", false, create_table, [](Context& c) {
             for (std::int64_t i = 1; i <= c.n; ++i) {
                 sa::Session s(c.engine);
                 s.add(std::make_shared<Customer>(Customer{0, name_of(i), desc_of(i)}));
                 s.commit();
             }
         }},
        {"core_commit", false, create_table, [](Context& c) {
             auto ins = c.schema->customer().insert();
             for (std::int64_t i = 1; i <= c.n; ++i) {
                 auto conn = c.engine->connect();
                 conn.execute(ins, {{"name", name_of(i)}, {"description", desc_of(i)}});
                 conn.commit();
             }
         }},
    }});

    out.push_back({"short_selects", "n lookups of one customer by primary key / by a column", 1, {
        {"raw_libpq", true, fill, [](Context& c) {
             RawPg r(c.db);
             r.exec("BEGIN");  // one read transaction, as athanor's connection holds one
             r.prepare("sel", "SELECT id, name, description FROM customer WHERE id = $1");
             for (std::int64_t i = 1; i <= c.n; ++i) {
                 std::string id = std::to_string(i);
                 PGresult* res = r.run("sel", {id.c_str()});
                 if (PQntuples(res) == 1) {
                     Customer cu{std::strtoll(PQgetvalue(res, 0, 0), nullptr, 10), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2)};
                     (void)cu;
                 }
                 PQclear(res);
             }
             r.exec("COMMIT");
         }, On::pg},
        {"raw_sqlite3", true, fill, [](Context& c) {
             raw_lookups(c, "SELECT id, name, description FROM customer WHERE id = ?", false);
         }, On::sqlite},
        // For reference: the same lookup with the SQL SQLAlchemy emits for first() (and
        // orm_query_first runs): "LIMIT ? OFFSET ?" adds eight VDBE instructions a lookup.
        {"raw_sqlite3_limit", false, fill, [](Context& c) {
             raw_lookups(c,
                         "SELECT customer.id, customer.name, customer.description FROM customer "
                         "WHERE customer.id = ? LIMIT ? OFFSET ?",
                         true);
         }, On::sqlite},
        {"orm_get", false, fill, [](Context& c) {
             sa::Session s(c.engine);
             for (std::int64_t i = 1; i <= c.n; ++i)
                 if (!s.get<Customer>(i)) throw std::runtime_error("missing");
         }},
        {"orm_query_first", false, fill, [](Context& c) {
             sa::Session s(c.engine);
             for (std::int64_t i = 1; i <= c.n; ++i)
                 if (!s.query<Customer>().filter_by({{"id", i}}).first()) throw std::runtime_error("missing");
         }},
        {"core_select", false, fill, [](Context& c) {
             auto conn = c.engine->connect();
             const auto& t = c.schema->customer();
             auto stmt = sa::select(t).where(t.c["id"] == sa::bindparam("id"));
             for (std::int64_t i = 1; i <= c.n; ++i) conn.execute(stmt, {{"id", i}}).one();
         }},
        {"orm_get_identity_map", false, fill, [](Context& c) {
             // Loads the identity map first, then times 10 x n hits (reported as gets/s).
             sa::Session sess(c.engine);
             auto held = sess.query<Customer>().all();  // the program holds them: all stay mapped
             auto t0 = Clock::now();
             std::int64_t found = 0;
             for (int rep = 0; rep < 10; ++rep)
                 for (std::int64_t i = 1; i <= c.n; ++i) found += sess.get<Customer>(i) != nullptr;
             double secs = std::chrono::duration<double>(Clock::now() - t0).count();
             if (found != 10 * c.n) throw std::runtime_error("identity map miss");
             c.n = -static_cast<std::int64_t>(10.0 * static_cast<double>(c.n) / secs);  // report gets/s
         }},
    }});

    // n/10 parents with 10 children each (n rows of children).
    constexpr int kKids = 10;
    auto fill_tree = [](Context& c) {
        create_table(c);
        auto conn = c.engine->connect();
        const auto& parent = c.schema->Base.metadata.get_table("parent");
        const auto& child = c.schema->Base.metadata.get_table("child");
        std::vector<sa::Params> ps, ks;
        for (std::int64_t i = 1; i <= c.n / kKids; ++i) {
            ps.push_back({{"id", i}, {"name", name_of(i)}});
            for (int j = 0; j < kKids; ++j) ks.push_back({{"parent_id", i}, {"name", name_of(i)}});
        }
        conn.execute(parent.insert(), ps);
        conn.execute(child.insert(), ks);
        conn.commit();
    };
    out.push_back({"relationships", "Insert n/10 parents with 10 children each through the cascade", 1, {
        {"raw_libpq", true, create_table, [](Context& c) {
             // The parents with their keys back by RETURNING, then the children, pipelined.
             RawPg r(c.db);
             r.exec("BEGIN");
             r.prepare("par", "INSERT INTO parent (name) VALUES ($1) RETURNING id");
             r.prepare("kid", "INSERT INTO child (parent_id, name) VALUES ($1, $2)");
             const std::int64_t parents = c.n / kKids;
             std::vector<std::string> names, ids(static_cast<std::size_t>(parents));
             for (std::int64_t i = 1; i <= parents; ++i) names.push_back(name_of(i));
             r.pipeline(parents, [&](std::int64_t i) { r.send("par", {names[static_cast<std::size_t>(i)].c_str()}); },
                        [&](std::int64_t i, PGresult* res) { ids[static_cast<std::size_t>(i)] = PQgetvalue(res, 0, 0); });
             std::string cn;
             r.pipeline(parents * kKids, [&](std::int64_t k) {
                 auto p = static_cast<std::size_t>(k / kKids);
                 cn = names[p] + " child " + std::to_string(k % kKids);
                 r.send("kid", {ids[p].c_str(), cn.c_str()});
             }, [](std::int64_t, PGresult*) {});
             r.exec("COMMIT");
         }, On::pg},
        {"raw_sqlite3", true, create_table, [](Context& c) {
             Raw r(c.db);
             r.exec("BEGIN");
             sqlite3_stmt* p = nullptr;
             sqlite3_stmt* k = nullptr;
             sqlite3_prepare_v2(r.db, "INSERT INTO parent (name) VALUES (?)", -1, &p, nullptr);
             sqlite3_prepare_v2(r.db, "INSERT INTO child (parent_id, name) VALUES (?, ?)", -1, &k, nullptr);
             for (std::int64_t i = 1; i <= c.n / kKids; ++i) {
                 std::string nm = name_of(i);
                 sqlite3_bind_text(p, 1, nm.c_str(), static_cast<int>(nm.size()), SQLITE_TRANSIENT);
                 sqlite3_step(p);
                 sqlite3_reset(p);
                 std::int64_t id = sqlite3_last_insert_rowid(r.db);
                 for (int j = 0; j < kKids; ++j) {
                     std::string cn = nm + " child " + std::to_string(j);
                     sqlite3_bind_int64(k, 1, id);
                     sqlite3_bind_text(k, 2, cn.c_str(), static_cast<int>(cn.size()), SQLITE_TRANSIENT);
                     sqlite3_step(k);
                     sqlite3_reset(k);
                 }
             }
             sqlite3_finalize(p);
             sqlite3_finalize(k);
             r.exec("COMMIT");
         }, On::sqlite},
        {"orm_cascade_insert", false, create_table, [](Context& c) {
             sa::Session s(c.engine);
             for (std::int64_t i = 1; i <= c.n / kKids; ++i) {
                 auto parent = std::make_shared<BParent>();
                 parent->name = name_of(i);
                 for (int j = 0; j < kKids; ++j) {
                     auto kid = std::make_shared<BChild>();
                     kid->name = parent->name + " child " + std::to_string(j);
                     parent->children.push_back(std::move(kid));
                 }
                 s.add(parent);
             }
             s.commit();
         }},
    }});
    out.push_back({"relationships_load", "Load n/10 parents and their n children", 1, {
        // The baseline runs what selectinload runs: the parents, then the children by
        // "parent_id IN (...)" 500 keys at a time, grouped under their parents.
        {"raw_libpq", true, fill_tree, [](Context& c) {
             RawPg r(c.db);
             r.exec("BEGIN");
             struct Kid {
                 std::int64_t id;
                 std::string name;
             };
             struct Par {
                 std::int64_t id;
                 std::string name;
                 std::vector<Kid> kids;
             };
             std::vector<Par> parents;
             std::unordered_map<std::int64_t, std::size_t> at;
             PGresult* res = PQexec(r.conn, "SELECT id, name FROM parent");
             RawPg::check(res);
             for (int i = 0; i < PQntuples(res); ++i) {
                 std::int64_t id = std::strtoll(PQgetvalue(res, i, 0), nullptr, 10);
                 at.emplace(id, parents.size());
                 parents.push_back({id, PQgetvalue(res, i, 1), {}});
             }
             PQclear(res);
             constexpr std::size_t kBatch = 500;
             bool prepared = false;
             for (std::size_t from = 0; from < parents.size(); from += kBatch) {
                 std::size_t n = std::min(kBatch, parents.size() - from);
                 std::string sql = "SELECT id, parent_id, name FROM child WHERE parent_id IN (";
                 for (std::size_t i = 0; i < n; ++i) sql += (i ? ", $" : "$") + std::to_string(i + 1);
                 sql += ")";
                 std::vector<std::string> keys;
                 for (std::size_t i = 0; i < n; ++i) keys.push_back(std::to_string(parents[from + i].id));
                 std::vector<const char*> vals;
                 for (auto& k : keys) vals.push_back(k.c_str());
                 if (n == kBatch && !prepared) {
                     r.prepare("kids", sql.c_str());
                     prepared = true;
                 }
                 res = n == kBatch ? PQexecPrepared(r.conn, "kids", static_cast<int>(n), vals.data(), nullptr, nullptr, 0)
                                   : PQexecParams(r.conn, sql.c_str(), static_cast<int>(n), nullptr, vals.data(), nullptr, nullptr, 0);
                 RawPg::check(res);
                 for (int i = 0; i < PQntuples(res); ++i)
                     parents[at[std::strtoll(PQgetvalue(res, i, 1), nullptr, 10)]].kids.push_back(
                         {std::strtoll(PQgetvalue(res, i, 0), nullptr, 10), PQgetvalue(res, i, 2)});
                 PQclear(res);
             }
             r.exec("COMMIT");
             std::size_t kids = 0;
             for (const auto& p : parents) kids += p.kids.size();
             if (static_cast<std::int64_t>(kids) != c.n / kKids * kKids) throw std::runtime_error("short read");
         }, On::pg},
        {"raw_sqlite3", true, fill_tree, [](Context& c) {
             Raw r(c.db);
             r.exec("BEGIN");
             struct Kid {
                 std::int64_t id;
                 std::string name;
             };
             struct Par {
                 std::int64_t id;
                 std::string name;
                 std::vector<Kid> kids;
             };
             std::vector<Par> parents;
             std::unordered_map<std::int64_t, std::size_t> at;
             sqlite3_stmt* st = nullptr;
             sqlite3_prepare_v2(r.db, "SELECT id, name FROM parent", -1, &st, nullptr);
             while (sqlite3_step(st) == SQLITE_ROW) {
                 at.emplace(sqlite3_column_int64(st, 0), parents.size());
                 parents.push_back({sqlite3_column_int64(st, 0), reinterpret_cast<const char*>(sqlite3_column_text(st, 1)), {}});
             }
             sqlite3_finalize(st);
             constexpr std::size_t kBatch = 500;
             sqlite3_stmt* full = nullptr;
             for (std::size_t from = 0; from < parents.size(); from += kBatch) {
                 std::size_t n = std::min(kBatch, parents.size() - from);
                 std::string sql = "SELECT id, parent_id, name FROM child WHERE parent_id IN (";
                 for (std::size_t i = 0; i < n; ++i) sql += i ? ", ?" : "?";
                 sql += ")";
                 sqlite3_stmt* q = n == kBatch ? full : nullptr;
                 if (!q) sqlite3_prepare_v2(r.db, sql.c_str(), -1, &q, nullptr);
                 for (std::size_t i = 0; i < n; ++i) sqlite3_bind_int64(q, static_cast<int>(i + 1), parents[from + i].id);
                 while (sqlite3_step(q) == SQLITE_ROW)
                     parents[at[sqlite3_column_int64(q, 1)]].kids.push_back(
                         {sqlite3_column_int64(q, 0), reinterpret_cast<const char*>(sqlite3_column_text(q, 2))});
                 sqlite3_reset(q);
                 if (n == kBatch) full = q;
                 else sqlite3_finalize(q);
             }
             if (full) sqlite3_finalize(full);
             r.exec("COMMIT");
             std::size_t kids = 0;
             for (const auto& p : parents) kids += p.kids.size();
             if (static_cast<std::int64_t>(kids) != c.n / kKids * kKids) throw std::runtime_error("short read");
         }, On::sqlite},
        // For reference: the two full scans a hand-written loader would do instead.
        {"raw_two_scans", false, fill_tree, [](Context& c) {
             Raw r(c.db);
             r.exec("BEGIN");
             sqlite3_stmt* st = nullptr;
             std::vector<std::pair<std::int64_t, std::string>> parents;
             sqlite3_prepare_v2(r.db, "SELECT id, name FROM parent", -1, &st, nullptr);
             while (sqlite3_step(st) == SQLITE_ROW)
                 parents.emplace_back(sqlite3_column_int64(st, 0), reinterpret_cast<const char*>(sqlite3_column_text(st, 1)));
             sqlite3_finalize(st);
             std::vector<std::vector<std::pair<std::int64_t, std::string>>> kids(parents.size() + 1);
             sqlite3_prepare_v2(r.db, "SELECT id, parent_id, name FROM child", -1, &st, nullptr);
             while (sqlite3_step(st) == SQLITE_ROW)
                 kids[static_cast<std::size_t>(sqlite3_column_int64(st, 1))].emplace_back(
                     sqlite3_column_int64(st, 0), reinterpret_cast<const char*>(sqlite3_column_text(st, 2)));
             sqlite3_finalize(st);
             r.exec("COMMIT");
             if (static_cast<std::int64_t>(parents.size()) != c.n / kKids) throw std::runtime_error("short read");
         }, On::sqlite},
        {"orm_selectinload", false, fill_tree, [](Context& c) {
             sa::Session s(c.engine);
             auto all = s.query<BParent>().options(sa::selectinload(&BParent::children)).all();
             std::size_t kids = 0;
             for (const auto& p : all) kids += p->children.size();
             if (static_cast<std::int64_t>(kids) != c.n / kKids * kKids) throw std::runtime_error("short read");
         }},
    }});

    out.push_back({"large_resultsets", "Load all n customers", 1, {
        {"raw_libpq", true, fill, [](Context& c) {
             RawPg r(c.db);
             r.exec("BEGIN");
             PGresult* res = PQexec(r.conn, "SELECT id, name, description FROM customer");
             RawPg::check(res);
             std::vector<Customer> all;
             for (int i = 0; i < PQntuples(res); ++i)
                 all.push_back({std::strtoll(PQgetvalue(res, i, 0), nullptr, 10), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2)});
             PQclear(res);
             r.exec("COMMIT");
             if (static_cast<std::int64_t>(all.size()) != c.n) throw std::runtime_error("short read");
         }, On::pg},
        {"raw_sqlite3", true, fill, [](Context& c) {
             Raw r(c.db);
             r.exec("BEGIN");
             sqlite3_stmt* st = nullptr;
             sqlite3_prepare_v2(r.db, "SELECT id, name, description FROM customer", -1, &st, nullptr);
             std::vector<Customer> all;
             while (sqlite3_step(st) == SQLITE_ROW)
                 all.push_back({sqlite3_column_int64(st, 0), reinterpret_cast<const char*>(sqlite3_column_text(st, 1)),
                                reinterpret_cast<const char*>(sqlite3_column_text(st, 2))});
             sqlite3_finalize(st);
             r.exec("COMMIT");
             if (static_cast<std::int64_t>(all.size()) != c.n) throw std::runtime_error("short read");
         }, On::sqlite},
        {"orm_query_all", false, fill, [](Context& c) {
             sa::Session s(c.engine);
             auto all = s.query<Customer>().all();
             if (static_cast<std::int64_t>(all.size()) != c.n) throw std::runtime_error("short read");
         }},
        {"core_rows", false, fill, [](Context& c) {
             auto conn = c.engine->connect();
             auto rows = conn.execute(sa::select(c.schema->customer())).all();
             if (static_cast<std::int64_t>(rows.size()) != c.n) throw std::runtime_error("short read");
         }},
    }});
    return out;
}

// ---- running ------------------------------------------------------------------------------------

// Bytes of heap in use (glibc's allocator statistics).
long heap_in_use() {
    struct mallinfo2 mi = mallinfo2();
    return static_cast<long>(mi.uordblks + mi.hblkhd);
}

// The memory probe's figures (bytes per object), 0 when not measured.
struct MemoryFigures {
    long object_bytes = 0, session_bytes = 0, total = 0;
    bool measured = false;  // the probe ran (and, run in a child, reported back)
};

// `probe()` run in a forked child, its figures sent back through a pipe; the child's heap goes
// with it. When no pipe or child can be made, the probe runs in this process instead (the
// figures are the same; only the heap the tests then find differs).
template <class Probe>
MemoryFigures in_child_process(Probe&& probe) {
    int fds[2];
    if (pipe(fds) != 0) return probe();
    std::cout.flush();  // the child's copy of the buffer must not be written twice
    std::cerr.flush();
    const pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return probe();
    }
    if (pid == 0) {
        close(fds[0]);
        int status = 1;
        try {
            const MemoryFigures m = probe();
            status = write(fds[1], &m, sizeof m) == static_cast<ssize_t>(sizeof m) ? 0 : 1;
        } catch (const std::exception& e) {
            std::cerr << "memory probe: " << e.what() << "\n";
        }
        _exit(status);  // no atexit handlers, no flush of buffers the parent owns
    }
    close(fds[1]);
    MemoryFigures m;
    std::size_t got = 0;
    while (got < sizeof m) {
        const ssize_t r = read(fds[0], reinterpret_cast<char*>(&m) + got, sizeof m - got);
        if (r <= 0) break;
        got += static_cast<std::size_t>(r);
    }
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (got != sizeof m || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        throw std::runtime_error("the memory probe's child process failed");
    return m;
}

// The heap every test runs in, touched once and kept. Memory glibc gives back to the system is
// paid for again, page by page, when a later test takes it (11 µs a page on the VM the README's
// figures come from), and whether a test finds room it has touched before depended on what ran
// before it: raw sqlite3's 72 MB vector at n=1000000 fitted into the space the ORM test before
// it had freed, or not, by the ORM's layout (0.19 s or 0.40 s). So the heap is grown once, before
// anything is timed, to more than any test takes, and never trimmed; requests up to 32 MiB come
// from it, larger ones too when it has room. Every test then runs on touched memory, as in a
// program that has been running a while; the warm-up rounds remain for everything else.
void settle_heap(std::size_t bytes) {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
    constexpr std::size_t kStep = 1 << 20;
    std::vector<char*> blocks;
    for (std::size_t got = 0; got < bytes; got += kStep) {
        blocks.push_back(static_cast<char*>(std::malloc(kStep)));
        if (!blocks.back()) break;
        std::memset(blocks.back(), 0, kStep);
    }
    for (char* p : blocks) std::free(p);
}

struct Figure {
    std::string suite, test;
    std::int64_t n;
    double median;
    std::vector<double> runs;
    double ratio = 0;  // median / baseline median
    double rate = 0;   // special: gets per second
};

// What the figures were measured on: CPU model, cores, kernel.
std::string machine() {
    std::string cpu = "unknown CPU";
    std::ifstream in("/proc/cpuinfo");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos) {
            cpu = line.substr(line.find(':') + 2);
            break;
        }
    std::string kernel;
    std::ifstream os("/proc/sys/kernel/osrelease");
    std::getline(os, kernel);
    return cpu + ", " + std::to_string(sysconf(_SC_NPROCESSORS_ONLN)) + " cores, Linux " + kernel;
}

// The commit of the source tree the bench was built from (git at run time, else the one
// recorded when it was configured).
std::string commit_of_source() {
    std::string out;
    std::string cmd = std::string("git -C '") + ATHANOR_SOURCE_DIR + "' rev-parse HEAD 2>/dev/null";
    if (FILE* p = popen(cmd.c_str(), "r")) {
        char buf[128];
        while (fgets(buf, sizeof buf, p)) out += buf;
        pclose(p);
    }
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    return out.empty() ? std::string(ATHANOR_CONFIGURED_COMMIT) : out;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

// Prints each ratio beside the one in an earlier --json file and flags the ones that grew by
// more than the noise of one machine (15%). Ratios measured on another machine or database are
// not comparable at that threshold: the header says so when the file's differ from this run's.
void compare_with(const std::string& file, const std::vector<Figure>& figures, const std::string& db_name) {
    nlohmann::json old;
    try {
        std::ifstream in(file);
        old = nlohmann::json::parse(in);
    } catch (const std::exception& e) {
        std::cerr << "--compare: cannot read " << file << ": " << e.what() << "\n";
        return;
    }
    std::map<std::tuple<std::string, std::string, std::int64_t>, nlohmann::json> before;
    if (old.contains("results"))
        for (const auto& e : old["results"])
            before[{e.value("suite", ""), e.value("test", ""), e.value("n", std::int64_t{0})}] = e;
    std::cout << "\ncompared with " << file << " (commit " << old.value("commit", std::string("?")) << "):\n";
    const std::string old_machine = old.value("machine", std::string("?")), now_machine = machine();
    if (old_machine != now_machine)
        std::cout << "  note: that file is of another machine (" << old_machine << "; this run: " << now_machine
                  << "): ratios differ between machines by more than the 15% flagged below\n";
    const std::string old_db = old.value("db", std::string("?"));
    if (old_db != db_name)
        std::cout << "  note: that file is of another database (" << old_db << "; this run: " << db_name
                  << "): its raw baseline ran against another database\n";
    int regressions = 0;
    for (const auto& f : figures) {
        auto it = before.find({f.suite, f.test, f.n});
        char line[256];
        if (it == before.end()) {
            std::snprintf(line, sizeof line, "  %-20s %-24s new", f.suite.c_str(), f.test.c_str());
        } else if (f.rate > 0) {
            double was = it->second.value("gets_per_s", 0.0);
            bool worse = was > 0 && f.rate < was / 1.15;
            regressions += worse;
            std::snprintf(line, sizeof line, "  %-20s %-24s %10.0f gets/s (was %10.0f)%s", f.suite.c_str(),
                          f.test.c_str(), f.rate, was, worse ? "  REGRESSION" : "");
        } else {
            double was = it->second.value("ratio_vs_raw", 0.0);
            bool worse = was > 0 && f.ratio > was * 1.15;
            regressions += worse;
            std::snprintf(line, sizeof line, "  %-20s %-24s %6.2fx (was %6.2fx)%s", f.suite.c_str(), f.test.c_str(),
                          f.ratio, was, worse ? "  REGRESSION" : "");
        }
        std::cout << line << "\n";
    }
    std::cout << "  " << regressions << " regression(s) beyond 15%\n";
}

// Per-row cost of each test at each size, and its ratio to raw: a cost per row that grows with
// n is a path that is not linear.
void print_scale(const std::vector<std::int64_t>& sizes, const std::vector<Figure>& figures) {
    std::cout << "\nscaling: microseconds per row (ratio to raw) at each n\n";
    std::vector<std::pair<std::string, std::string>> order;
    for (const auto& f : figures)
        if (f.rate == 0 && std::find(order.begin(), order.end(), std::make_pair(f.suite, f.test)) == order.end())
            order.emplace_back(f.suite, f.test);
    char cell[64];
    std::cout << "  " << std::string(45, ' ');
    for (auto n : sizes) {
        std::snprintf(cell, sizeof cell, " %18lld", static_cast<long long>(n));
        std::cout << cell;
    }
    std::cout << "\n";
    for (const auto& [suite, test] : order) {
        std::snprintf(cell, sizeof cell, "  %-20s %-24s", suite.c_str(), test.c_str());
        std::cout << cell;
        for (std::size_t k = 0; k < sizes.size(); ++k) {
            // Figures come size by size, in the same order each time: the k-th one of this test.
            std::size_t seen = 0;
            const Figure* hit = nullptr;
            for (const auto& f : figures)
                if (f.suite == suite && f.test == test && seen++ == k) hit = &f;
            if (!hit) std::snprintf(cell, sizeof cell, " %18s", "-");
            else
                std::snprintf(cell, sizeof cell, " %9.3f (%5.2fx)", 1e6 * hit->median / static_cast<double>(hit->n),
                              hit->ratio);
            std::cout << cell;
        }
        std::cout << "\n";
    }
}

}  // namespace

int main(int argc, char** argv) {
    Options opt;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::cerr << "missing value for " << a << "\n";
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--suite") opt.suite = next();
        else if (a == "--test") opt.test = next();
        else if (a == "-n") opt.n = std::stoll(next());
        else if (a == "--db") {
            std::string v = next();
            if (v.rfind("postgresql", 0) == 0) {
                opt.pg_url = v;
            } else if (v != "file" && v != "memory") {
                std::cerr << "--db takes file, memory or a postgresql:// URL\n";
                return 2;
            }
            opt.file = v != "memory";
        } else if (a == "--repeat") opt.repeat = std::max(1, std::stoi(next()));
        else if (a == "--warmup") opt.warmup = std::max(0, std::stoi(next()));
        else if (a == "--json") opt.json = next();
        else if (a == "--compare") opt.compare = next();
        else if (a == "--scale") {
            std::string v = next();
            for (std::size_t pos = 0; pos <= v.size();) {
                std::size_t comma = v.find(',', pos);
                if (comma == std::string::npos) comma = v.size();
                std::int64_t n = 0;
                try {
                    n = std::stoll(v.substr(pos, comma - pos));
                } catch (const std::exception&) {
                }
                if (n <= 0) {
                    std::cerr << "--scale takes sizes separated by commas: 10000,100000,1000000\n";
                    return 2;
                }
                opt.scale.push_back(n);
                pos = comma + 1;
            }
            std::sort(opt.scale.begin(), opt.scale.end());
        } else if (a == "--echo") opt.echo = true;
        else if (a == "-h" || a == "--help") {
            std::cout << "athanor-bench [--suite NAME] [--test NAME] [-n N] [--db file|memory|postgresql://...] [--repeat R] "
                         "[--warmup W] [--json FILE] [--compare OLD.json] [--scale N1,N2,...] [--echo]\nsuites:";
            for (auto& s : suites()) std::cout << " " << s.name;
            std::cout << "\n";
            return 0;
        } else {
            std::cerr << "unknown option " << a << " (try --help)\n";
            return 2;
        }
    }
    auto all = suites();
    if (!opt.suite.empty() && std::none_of(all.begin(), all.end(), [&](auto& s) { return s.name == opt.suite; })) {
        std::cerr << "no suite named " << opt.suite << "\n";
        return 2;
    }
    std::vector<Figure> figures;
    const bool progress = isatty(STDERR_FILENO) != 0;  // the progress line is for terminals
    std::filesystem::path dir = std::filesystem::temp_directory_path();
    if (!opt.file && std::filesystem::is_directory("/dev/shm")) dir = "/dev/shm";
    // One file per process: two runs at once (a profile beside a timing run) must not share it.
    auto path = (dir / ("athanor_bench." + std::to_string(getpid()) + ".db")).string();
    const bool pg = !opt.pg_url.empty();
    const std::string db_name = pg ? sa::make_url(opt.pg_url).render() : opt.file ? "file" : "memory";
    std::cout << "athanor-bench: n=" << opt.n << ", db=" << db_name << ", repeat=" << opt.repeat
              << " (median of repeats; ratio = median of time / raw " << (pg ? "libpq" : "sqlite3")
              << " time of the same repeat)\n";
    // A fresh database for each test: a new file, or the server's tables dropped.
    auto reset = [&](Schema& schema) {
        if (!pg) {
            std::filesystem::remove(path);
            return;
        }
        auto e = sa::create_engine(opt.pg_url);
        schema.Base.metadata.drop_all(*e);
    };
    if (opt.scale.empty()) opt.scale.push_back(opt.n);
    opt.n = opt.scale.back();  // the memory figure and the JSON's "n": the largest size
    // Memory held by a session: load n customers and keep them; heap growth / n, split into the
    // objects themselves (measured by building the same objects without a session, held the
    // same way) and the session's own bookkeeping. (Not by closing the session: the objects the
    // program still holds then become detached, which has its own small record per object.)
    // Measured first, before the heap is settled and before any test: a test's objects leave
    // the object pool with free chunks of slabs still in use, which a later load takes without
    // growing the heap (the session's figure read 10 bytes an object lower after the suites).
    // Measured in a child process (fork), whose heap is a copy thrown away with it: n objects
    // freed in this process left its bins fragmented, and the batch inserts after it ran
    // 0.04-0.11x slower than with the probe in a child or in a run of their suite alone (the raw
    // program given the same Params 0.02-0.03x). The tests now find the same heap whichever
    // suites run.
    MemoryFigures mem;
    if (opt.suite.empty() || opt.suite == "large_resultsets") {
        const auto probe = [&] {
            MemoryFigures m;
            Schema schema;
            Context c{opt, opt.n, Db{path, opt.pg_url}, nullptr, &schema};
            reset(schema);
            c.engine = sa::create_engine(c.db.url());
            fill(c);
            malloc_trim(0);
            long base = heap_in_use();
            {
                // Held as Query::all() returns them: a vector grown row by row (its slack is the
                // program's, not the session's).
                std::vector<std::shared_ptr<Customer>> plain;
                for (std::int64_t i = 1; i <= opt.n; ++i)
                    plain.push_back(std::make_shared<Customer>(Customer{i, name_of(i), desc_of(i)}));
                m.object_bytes = (heap_in_use() - base) / std::max<std::int64_t>(1, opt.n);
            }
            malloc_trim(0);
            base = heap_in_use();
            {
                sa::Session s(c.engine);
                auto objs = s.query<Customer>().all();
                m.total = (heap_in_use() - base) / std::max<std::int64_t>(1, opt.n);
                m.session_bytes = m.total - m.object_bytes;
            }
            c.engine.reset();
            std::filesystem::remove(path);
            m.measured = true;
            return m;
        };
        mem = in_child_process(probe);
    }

    // 1 KiB a row of the largest size: above the largest test's peak (the ORM holding 1M
    // customers takes 420 MB); a test that needs more grows it in its warm-up, kept as well.
    settle_heap(std::max<std::size_t>(std::size_t{256} << 20, static_cast<std::size_t>(opt.n) << 10));
    for (const std::int64_t size : opt.scale) {
        if (opt.scale.size() > 1) std::cout << "\n==== n=" << size << "\n";
        for (auto& suite : all) {
            if (!opt.suite.empty() && suite.name != opt.suite) continue;
            std::cout << "\n" << suite.name << ": " << suite.doc << "\n";
            // Repeats are interleaved (raw, orm, core, raw, orm, core, ...) so that a slow moment of
            // the machine falls on every test of the suite alike, not on one.
            std::vector<const Test*> chosen;
            for (auto& t : suite.tests) {
                if (t.on == (pg ? On::sqlite : On::pg)) continue;
                if (opt.test.empty() || t.name == opt.test || t.baseline) chosen.push_back(&t);
            }
            std::vector<Figure> figs;
            for (const Test* t : chosen) figs.push_back({suite.name, t->name, std::max<std::int64_t>(1, size / suite.n_divisor), 0, {}});
            // Warm-up rounds (default 1) are run and thrown away: a fresh process's first rounds pay
            // for first-touch page faults of the heap, which a running application does not.
            for (int r = -opt.warmup; r < opt.repeat; ++r) {
                for (std::size_t k = 0; k < chosen.size(); ++k) {
                    const Test& t = *chosen[k];
                    Figure& f = figs[k];
                    if (progress)
                        std::cerr << "\r  [" << suite.name << "] " << t.name << " "
                                  << (r < 0 ? std::string("warm-up") : std::to_string(r + 1) + "/" + std::to_string(opt.repeat))
                                  << "        " << std::flush;
                    Schema schema;
                    Context c{opt, f.n, Db{path, opt.pg_url}, nullptr, &schema};
                    reset(schema);
                    c.engine = sa::create_engine(c.db.url(), {.echo = opt.echo});
                    t.setup(c);
                    if (t.baseline) c.engine->dispose();  // the baseline runs on its own connection
                    auto t0 = Clock::now();
                    t.run(c);
                    double secs = std::chrono::duration<double>(Clock::now() - t0).count();
                    if (c.n < 0 && r >= 0) f.rate = std::max(f.rate, static_cast<double>(-c.n));
                    if (r >= 0) f.runs.push_back(secs);
                }
            }
            if (progress) std::cerr << "\r" << std::string(70, ' ') << "\r";
            // The ratio is the median of the per-repeat ratios (each run against the baseline run
            // beside it), which a slow phase of the machine moves less than a ratio of medians.
            const std::vector<double>* base_runs = nullptr;
            for (std::size_t k = 0; k < chosen.size(); ++k)
                if (chosen[k]->baseline) base_runs = &figs[k].runs;
            for (std::size_t k = 0; k < chosen.size(); ++k) {
                Figure& f = figs[k];
                f.median = median(f.runs);
                f.ratio = 0;
                if (base_runs && base_runs->size() == f.runs.size()) {
                    std::vector<double> ratios;
                    for (std::size_t r = 0; r < f.runs.size(); ++r)
                        if ((*base_runs)[r] > 0) ratios.push_back(f.runs[r] / (*base_runs)[r]);
                    if (!ratios.empty()) f.ratio = median(ratios);
                }
                char line[256];
                if (f.rate > 0)
                    std::snprintf(line, sizeof line, "  %-24s %10lld gets  %12.0f gets/s (identity map hits)", f.test.c_str(),
                                  static_cast<long long>(10 * f.n), f.rate);
                else
                    std::snprintf(line, sizeof line, "  %-24s %10lld rows  %9.4f s  %7.2fx raw", f.test.c_str(),
                                  static_cast<long long>(f.n), f.median, f.ratio);
                std::cout << line << std::endl;
                figures.push_back(f);
            }
        }
    }
    std::filesystem::remove(path);
    if (opt.scale.size() > 1) print_scale(opt.scale, figures);

    if (mem.total > 0 && mem.object_bytes > 0)
        std::cout << "\nmemory: a session holding " << opt.n << " customers: " << mem.total
                  << " bytes per object in all = " << mem.object_bytes << " for the object + " << mem.session_bytes
                  << " of session bookkeeping (identity map, snapshot)\n";
    else if (mem.measured)  // a sanitizer's allocator: glibc's statistics see none of its heap
        std::cout << "\nmemory: not measured (this build's allocator keeps no heap statistics)\n";

    if (!opt.compare.empty()) compare_with(opt.compare, figures, db_name);

    if (!opt.json.empty()) {
        nlohmann::json j;
        j["n"] = opt.n;
        j["scale"] = opt.scale;
        j["db"] = db_name;
        j["repeat"] = opt.repeat;
        j["machine"] = machine();
        j["sqlite_version"] = sqlite3_libversion();
        j["libpq_version"] = PQlibVersion();
        j["commit"] = commit_of_source();
        j["code_pad"] = ATHANOR_BENCH_CODE_PAD;  // the layout probe (bench/CMakeLists.txt), 0 normally
        j["memory_object_bytes"] = mem.object_bytes;
        j["memory_session_bytes_per_object"] = mem.session_bytes;
        for (auto& f : figures) {
            nlohmann::json e = {{"suite", f.suite}, {"test", f.test}, {"n", f.n}, {"median_s", f.median},
                                {"runs_s", f.runs}, {"ratio_vs_raw", f.ratio},
                                {"per_row_us", 1e6 * f.median / static_cast<double>(std::max<std::int64_t>(1, f.n))}};
            if (f.rate > 0) e["gets_per_s"] = f.rate;
            j["results"].push_back(e);
        }
        std::ofstream(opt.json) << j.dump(2) << "\n";
        std::cout << "wrote " << opt.json << "\n";
    }
    return 0;
}

// The layout probe (ATHANOR_BENCH_CODE_PAD, bench/CMakeLists.txt): this many bytes ahead of the
// hot section and of the rest of the code move every function of the library that the linker
// places after them, with the same code, to other addresses, hence other instruction-cache sets.
#if ATHANOR_BENCH_CODE_PAD > 0
#define ATHANOR_BENCH_STR2(x) #x
#define ATHANOR_BENCH_STR(x) ATHANOR_BENCH_STR2(x)
asm(".pushsection .text.hot.athanor_bench_pad,\"ax\",@progbits\n"
    ".skip " ATHANOR_BENCH_STR(ATHANOR_BENCH_CODE_PAD) "\n.popsection\n"
    ".pushsection .text.athanor_bench_pad,\"ax\",@progbits\n"
    ".skip " ATHANOR_BENCH_STR(ATHANOR_BENCH_CODE_PAD) "\n.popsection\n");
#endif
