// Private to engine/: the driver interfaces (one database connection, one prepared statement),
// the pool, and the state behind Engine, Connection and Result. The drivers live in
// sqlite_driver.cpp (SQLiteCpp; <sqlite3.h> stays there) and pg_driver.cpp (libpq).
#pragma once

#include <athanor/core/compiled.hpp>
#include <athanor/core/connectable.hpp>
#include <athanor/engine/engine.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <spdlog/spdlog.h>

namespace athanor::detail {

/// One prepared statement of one driver connection. Exactly one SQL statement: text with a
/// second statement after the first is a ProgrammingError, never silently cut short. Used by
/// one thread at a time (the connection's). Errors are thrown as DBAPIError subclasses.
struct DriverStatement {
    virtual ~DriverStatement() = default;
    DriverStatement() = default;
    DriverStatement(const DriverStatement&) = delete;
    DriverStatement& operator=(const DriverStatement&) = delete;

    /// Binds `values` (one per placeholder) and runs the statement: true when a first row is
    /// current. `rows_outlive_values`: the caller's values may be gone while rows are read
    /// (the driver must copy what it binds). A wrong number of values is a ProgrammingError.
    virtual bool execute(std::span<const Value* const> values, bool rows_outlive_values) = 0;
    /// Reads the first `n` columns of the current row into `out` (resized; buffers reused).
    virtual void read_row(int n, std::vector<Value>& out) = 0;
    /// The current row as views, valid until the next step() / reset().
    virtual void read_views(int n, std::vector<ValueView>& out) = 0;
    /// Integer value of column `i` of the current row (a RETURNING key), 0 when NULL.
    virtual std::int64_t int_at(int i) = 0;
    /// Moves to the next row: false at the end (the statement is then reset).
    virtual bool step() = 0;
    /// Forgets the current execution's rows; never throws.
    virtual void reset() noexcept = 0;
    /// Rows changed by the last execution; the last inserted rowid (SQLite).
    virtual std::int64_t rowcount() const noexcept = 0;
    virtual std::int64_t lastrowid() const noexcept { return 0; }

    std::string sql;
    std::atomic<bool> in_use{false};  // released by a Cursor possibly after its transaction ended
    int param_count = 0;
    int column_count = 0;
    std::shared_ptr<const std::vector<std::string>> keys;  // column names, built once
};

/// One database connection with its statement cache and transaction state. For an in-memory
/// SQLite database one DriverConnection is shared by every Connection of the engine.
struct DriverConnection {
    explicit DriverConnection(std::size_t cache_limit) : cache_limit(cache_limit) {}
    virtual ~DriverConnection() = default;

    /// A prepared statement for `sql`: the cached one, or, when that one is still streaming
    /// rows for a live Result, a fresh one owned by `owned`.
    DriverStatement* acquire(const std::string& sql, std::unique_ptr<DriverStatement>& owned);
    virtual std::unique_ptr<DriverStatement> prepare(const std::string& sql) = 0;
    /// Runs one SQL statement with no parameters (BEGIN, COMMIT, DDL): never a multi-statement
    /// string.
    virtual void exec(const std::string& sql) = 0;
    /// Runs one literal statement and returns every row (reflection queries).
    virtual std::vector<std::vector<Value>> query(const std::string& sql) = 0;
    /// Whether the database has an open transaction (SQLite: not in autocommit).
    virtual bool in_db_transaction() const noexcept = 0;
    /// Whether the open transaction has written (SQLite's write lock); used by the in-memory
    /// engine's savepoint joins.
    virtual bool has_written() const noexcept { return true; }
    /// The connection is lost or unusable: the pool discards it instead of keeping it.
    virtual bool broken() const noexcept { return false; }
    /// Runs `stmt` once per row of `all` (each `per` values), returning the changed rows in
    /// all; drivers with pipelining send many in one round trip. Appends each execution's key
    /// to `keys` (lastrowid, or the RETURNING column `lastrowid_column` when >= 0) and its
    /// changed rows to `counts`, when given.
    virtual std::int64_t execute_batch(DriverStatement& stmt, std::span<const Value* const> all,
                                       std::size_t per, int lastrowid_column,
                                       std::vector<std::int64_t>* keys, std::vector<std::int64_t>* counts = nullptr);
    /// Whether execute_batch sends executions together (worth queueing them).
    virtual bool pipelines() const noexcept { return false; }
    /// Pipelining drivers: sends one execution of `stmt` now, its results read later (by
    /// finish_stream, or by any other use of the connection, which ends the stream first).
    virtual void stream(DriverStatement& stmt, std::span<const Value* const> values, int lastrowid_column) {
        (void)stmt, (void)values, (void)lastrowid_column;
    }
    /// Ends `stmt`'s stream: appends each execution's key and row count, returns the rows
    /// changed in all, and throws the first failing execution's error.
    virtual std::int64_t finish_stream(DriverStatement& stmt, std::vector<std::int64_t>* keys,
                                       std::vector<std::int64_t>* counts) {
        (void)stmt, (void)keys, (void)counts;
        return 0;
    }
    /// Called after COMMIT / ROLLBACK (PostgreSQL: deallocates statements dropped meanwhile).
    virtual void after_transaction() noexcept {}

    std::unordered_map<std::string, std::unique_ptr<DriverStatement>> cache;
    std::size_t cache_limit;

    // Transaction state. Atomic because a Transaction or Session on another thread may ask
    // whether its (long finished) transaction is still active while the shared in-memory
    // connection serves another thread's transaction.
    std::atomic<bool> tx_active{false};
    std::atomic<const void*> tx_owner{nullptr};  // the ConnectionImpl that began the transaction
    std::atomic<std::uint64_t> generation{0};    // bumped at each COMMIT / ROLLBACK
    int savepoint_seq = 0;
    /// Open savepoints, innermost last (a stale handle is recognised by its name missing).
    std::vector<std::string> savepoints;
};

/// SQLite: whether PRAGMA foreign_keys is on for this connection (engine.cpp).
bool sqlite_enforces_foreign_keys(DriverConnection& db);

/// Opens a SQLite connection (sqlite_driver.cpp); OperationalError when it cannot.
std::shared_ptr<DriverConnection> open_sqlite(const URL& url, const EngineOptions& options);
/// Opens a libpq connection (pg_driver.cpp); OperationalError when the server cannot be
/// reached or refuses the login.
std::shared_ptr<DriverConnection> open_postgresql(const URL& url, const EngineOptions& options);

struct EngineImpl {
    EngineImpl(URL url, EngineOptions options);

    std::shared_ptr<DriverConnection> checkout();
    void checkin(std::shared_ptr<DriverConnection> c) noexcept;
    std::shared_ptr<DriverConnection> open() const;

    bool echo() const noexcept { return echo_level > 0; }
    void log(const std::string& msg) const;
    void log_debug(const std::string& msg) const;
    /// The SQLite in-memory database (one connection shared by every Connection).
    bool shared_memory() const noexcept { return memory; }

    URL url;
    EngineOptions options;
    const Dialect& dialect;  // process-wide per backend (shared compile caches)
    bool memory = false;
    std::string begin_sql;   // "BEGIN", "BEGIN IMMEDIATE", "BEGIN ISOLATION LEVEL ..."
    std::shared_ptr<spdlog::logger> logger;
    int echo_level = 0;

    std::mutex mutex;
    std::vector<std::shared_ptr<DriverConnection>> idle;
    std::shared_ptr<DriverConnection> memory_conn;

    // The in-memory database has one SQLite connection for every Connection of the engine.
    // Threads take turns by transaction: the thread whose Connection began the transaction
    // holds the lease until that Connection commits or rolls back; other threads wait for it
    // (up to busy_timeout). Connections on the holding thread join the transaction inside a
    // SAVEPOINT of their own, so their rollback never undoes the owner's work.
    std::mutex lease_mutex;
    std::condition_variable lease_cv;
    bool leased = false;
    std::thread::id lease_thread;
    /// True when the calling thread holds the lease; otherwise waits for it and takes it
    /// (false). Throws OperationalError after busy_timeout.
    bool acquire_lease();
    void release_lease() noexcept;
};

struct ConnectionImpl : SchemaConnection, std::enable_shared_from_this<ConnectionImpl> {
    ConnectionImpl(std::shared_ptr<EngineImpl> e, std::shared_ptr<DriverConnection> c)
        : engine(std::move(e)), db(std::move(c)) {}
    ~ConnectionImpl() override;

    /// BEGIN unless a transaction is open: the usual case (a file database's connection in
    /// its transaction) is decided here, in line, once per execution.
    void autobegin() {
        if (!engine->shared_memory() && db->tx_active) return;
        begin_slow();
    }
    void begin_slow();
    void commit();
    void rollback();
    /// Whether this connection has a transaction of its own (began it, or joined it).
    bool in_transaction() const noexcept;
    bool joined_now() const noexcept { return joined && joined_generation == db->generation; }
    /// Rolls back this connection's transaction, if it began one; never throws.
    void release() noexcept;
    /// Forgets the ended transaction (and hands the in-memory lease on).
    void end_transaction() noexcept;
    /// Runs a transaction-control statement (SAVEPOINT, RELEASE...) with its echo.
    void control(const std::string& sql);

    Result execute(const Executable& stmt, const Params& params);
    Result execute_many(const Executable& stmt, const std::vector<Params>& params);
    /// Executes one compiled statement with already-resolved values.
    Result run(const std::shared_ptr<const Compiled>& compiled, const std::vector<const Value*>& values,
               bool cache_hit);

    void log_statement(const std::string& sql, const std::string& stats,
                       const std::string& params) const;

    // SchemaConnection
    const Dialect& dialect() const override { return engine->dialect; }
    void execute_ddl(const std::string& sql) override;
    std::vector<std::vector<Value>> execute_raw(const std::string& sql) override;
    void warn(const std::string& message) override { engine->logger->warn(message); }

    std::shared_ptr<EngineImpl> engine;
    std::shared_ptr<DriverConnection> db;
    // In-memory engine: this connection joined another Connection's transaction on the same
    // thread, inside SAVEPOINT join_savepoint (valid while the transaction's generation holds).
    bool joined = false;
    bool join_after_writes = false;  // the owner had written before we joined
    std::uint64_t joined_generation = 0;
    std::string join_savepoint;
    // Per-connection scratch buffers reused across executions (no allocation per row).
    std::vector<const Value*> bound;
    std::vector<Value> scratch;
};

struct ResultImpl {
    ~ResultImpl();
    /// Makes the next row current (stepping if the last one was consumed); false at the end.
    bool advance();
    /// Reads the next row; false when exhausted.
    bool next(std::vector<Value>& out);
    bool next_views(std::vector<ValueView>& out);
    void log_row();
    void release() noexcept;

    std::shared_ptr<ConnectionImpl> conn;
    std::shared_ptr<DriverConnection> db_keep;  // the statement lives in its cache
    DriverStatement* stmt = nullptr;
    std::unique_ptr<DriverStatement> owned;
    std::shared_ptr<const std::vector<std::string>> keys;
    int columns = 0;  // columns shown (a key fetched by RETURNING for lastrowid is not)
    bool has_row = false;
    bool step_pending = false;  // the current row was consumed; step before reading again
    bool returns_rows = false;
    bool logged_cols = false;
    std::int64_t rowcount = -1;
    std::int64_t lastrowid = 0;
    std::vector<Value> inserted_pk;
};

/// Whether [p, end) holds only whitespace, comments and semicolons (what may follow the one
/// statement of a text; all of an empty one).
bool only_trailing_noise(const char* p, const char* end);
/// "Incorrect number of bindings supplied..." as a ProgrammingError (SQLite's code, or the
/// SQLSTATE 08P01 for a server).
[[noreturn]] void raise_binding_count(const DriverStatement& ps, std::size_t given,
                                      std::span<const Value* const> values, bool server);
/// Echo formatting, SQLAlchemy's: "('ed', 5)", "[generated in 0.00012s]".
std::string repr_params(std::span<const Value* const> values);
std::string repr_params(const std::vector<Value>& values);
std::string repr_multi(const std::vector<std::string>& tuples);
std::string stats_generated(std::chrono::steady_clock::time_point since);
std::string stats_cached(std::chrono::steady_clock::time_point since);
std::string stats_no_key(std::chrono::steady_clock::time_point since);

}  // namespace athanor::detail
