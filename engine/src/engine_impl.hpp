// Private to engine/: the SQLite connection, prepared-statement cache, pool, and the state
// behind Engine, Connection and Result. SQLiteCpp and <sqlite3.h> stay in this folder.
#pragma once

#include <athanor/core/compiled.hpp>
#include <athanor/core/connectable.hpp>
#include <athanor/engine/engine.hpp>
#include <athanor/engine/sqlite_dialect.hpp>

#include <SQLiteCpp/Database.h>
#include <sqlite3.h>

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

/// One prepared statement (RAII: finalized on destruction). Exactly one SQL statement: text
/// with a second statement after the first is a ProgrammingError, never silently cut short.
struct PreparedStatement {
    PreparedStatement(sqlite3* db, const std::string& sql);
    ~PreparedStatement();
    PreparedStatement(const PreparedStatement&) = delete;
    PreparedStatement& operator=(const PreparedStatement&) = delete;

    sqlite3_stmt* stmt = nullptr;
    std::string sql;
    std::atomic<bool> in_use{false};  // released by a Cursor possibly after its transaction ended
    int param_count = 0;
    int column_count = 0;
    std::shared_ptr<const std::vector<std::string>> keys;  // column names, built once
};

/// One SQLite connection with its statement cache and transaction state. For an in-memory
/// database one DBConnection is shared by every Connection of the engine.
struct DBConnection {
    DBConnection(const URL& url, const EngineOptions& options);

    /// A prepared statement for `sql`: the cached one, or, when that one is still streaming
    /// rows for a live Result, a fresh one owned by `owned`.
    PreparedStatement* acquire(const std::string& sql, std::unique_ptr<PreparedStatement>& owned);
    /// Runs one SQL statement with no parameters (BEGIN, COMMIT, DDL): prepared, stepped to
    /// the end and finalized, never sqlite3_exec of composed text.
    void exec(const std::string& sql);
    sqlite3* handle() const noexcept { return db.getHandle(); }

    SQLite::Database db;
    std::unordered_map<std::string, std::unique_ptr<PreparedStatement>> cache;
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

struct EngineImpl {
    EngineImpl(URL url, EngineOptions options);

    std::shared_ptr<DBConnection> checkout();
    void checkin(std::shared_ptr<DBConnection> c) noexcept;

    bool echo() const noexcept { return echo_level > 0; }
    void log(const std::string& msg) const;
    void log_debug(const std::string& msg) const;

    URL url;
    EngineOptions options;
    const Dialect& dialect;  // the process-wide SQLite dialect (shared compile caches)
    std::shared_ptr<spdlog::logger> logger;
    int echo_level = 0;

    std::mutex mutex;
    std::vector<std::shared_ptr<DBConnection>> idle;
    std::shared_ptr<DBConnection> memory_conn;

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
    ConnectionImpl(std::shared_ptr<EngineImpl> e, std::shared_ptr<DBConnection> c)
        : engine(std::move(e)), db(std::move(c)) {}
    ~ConnectionImpl() override;

    void autobegin();
    void commit();
    void rollback();
    /// Whether this connection has a transaction of its own (began it, or joined it).
    bool in_transaction() const noexcept;
    bool joined_now() const noexcept { return joined && joined_generation == db->generation; }
    /// Rolls back this connection's transaction, if it began one; never throws.
    void release() noexcept;
    /// Forgets the ended transaction (and hands the in-memory lease on).
    void end_transaction() noexcept;

    Result execute(const Executable& stmt, const Params& params);
    Result execute_many(const Executable& stmt, const std::vector<Params>& params);
    /// Executes one compiled statement with already-resolved values.
    Result run(const Compiled& compiled, const std::vector<const Value*>& values, bool cache_hit);

    void log_statement(const std::string& sql, const std::string& stats,
                       const std::string& params) const;

    // SchemaConnection
    const Dialect& dialect() const override { return engine->dialect; }
    void execute_ddl(const std::string& sql) override;
    std::vector<std::vector<Value>> execute_raw(const std::string& sql) override;
    void warn(const std::string& message) override { engine->logger->warn(message); }

    std::shared_ptr<EngineImpl> engine;
    std::shared_ptr<DBConnection> db;
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
    std::shared_ptr<DBConnection> db_keep;  // the statement lives in its cache
    PreparedStatement* stmt = nullptr;
    std::unique_ptr<PreparedStatement> owned;
    std::shared_ptr<const std::vector<std::string>> keys;
    bool has_row = false;
    bool step_pending = false;  // the current row was consumed; step before reading again
    bool returns_rows = false;
    bool logged_cols = false;
    std::int64_t rowcount = -1;
    std::int64_t lastrowid = 0;
    std::vector<Value> inserted_pk;
};

/// Reads the current row of `stmt` into `out` (resized; strings reuse their buffers).
void read_row(sqlite3_stmt* stmt, int columns, std::vector<Value>& out);
/// Binds values to a statement; `transient` makes SQLite copy text and blobs (needed when the
/// statement will keep stepping after the caller's values are gone).
void bind_all(PreparedStatement& ps, std::span<const Value* const> values, bool transient);
/// Throws the DBAPIError subclass matching SQLite's code, with the SQL and parameters.
[[noreturn]] void raise_sqlite(sqlite3* db, int rc, const std::string& sql,
                               const std::string& params_repr);
/// Echo formatting, SQLAlchemy's: "('ed', 5)", "[generated in 0.00012s]".
std::string repr_params(std::span<const Value* const> values);
std::string repr_params(const std::vector<Value>& values);
std::string repr_multi(const std::vector<std::string>& tuples);
std::string stats_generated(std::chrono::steady_clock::time_point since);
std::string stats_cached(std::chrono::steady_clock::time_point since);
std::string stats_no_key(std::chrono::steady_clock::time_point since);

}  // namespace athanor::detail
