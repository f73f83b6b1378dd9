// Engine: the starting point, after SQLAlchemy's create_engine(). An Engine owns a dialect and
// a pool of database connections; Connections check one out and return it on close.
//
// PostgreSQL (postgresql://, libpq): each Connection checks out a server connection from the
// pool (up to pool_size idle ones are kept); a connection found lost (OperationalError with
// SQLSTATE class 08, or a server shutdown) is discarded instead of returned to the pool.
//
// SQLite connection handling: an in-memory database has one connection shared by every
// Connection of the Engine (otherwise each would see its own empty database); a file database
// pools connections, each with a busy timeout, and WAL journaling when asked for.
//
// Thread-safety: an Engine may be shared between threads; each Connection (and each Session)
// belongs to one thread at a time. A file database gives each Connection its own SQLite
// connection; SQLite's file locking serializes writers (busy_timeout, then OperationalError).
// The in-memory database is one SQLite connection that threads take turns on, a transaction
// at a time: a Connection that begins a transaction holds it until commit or rollback, and
// Connections of other threads wait for it (busy_timeout, then OperationalError). Connections
// of the holding thread join its transaction inside a SAVEPOINT of their own.
#pragma once

#include <athanor/core/connectable.hpp>
#include <athanor/core/dialect.hpp>
#include <athanor/engine/connection.hpp>
#include <athanor/engine/url.hpp>

#include <memory>
#include <string>

namespace spdlog {
class logger;
class formatter;
}

namespace athanor {

namespace detail {
struct EngineImpl;
}

/// echo: false, true (SQL and parameters at INFO) or "debug" (also result rows, at DEBUG).
struct Echo {
    int level = 0;  // 0 off, 1 info, 2 debug
    Echo() = default;
    Echo(bool on) : level(on ? 1 : 0) {}  // NOLINT
    Echo(const char* s);                  // NOLINT: "debug" or "info"
    explicit operator bool() const noexcept { return level > 0; }
};

struct EngineOptions {
    Echo echo = false;
    /// SQLite: seconds to wait on a locked database file before OperationalError.
    double busy_timeout = 5.0;
    /// SQLite: PRAGMA journal_mode=WAL on every file connection.
    bool wal = false;
    /// SQLite: PRAGMA foreign_keys=ON on every connection (SQLite's default is off).
    bool foreign_keys = false;
    /// Prepared statements kept per connection.
    std::size_t statement_cache_size = 256;
    /// File databases: idle connections kept.
    std::size_t pool_size = 5;
    /// SQLite: how transactions begin: "DEFERRED" (SQLite's default: the write lock is taken
    /// at the first write), "IMMEDIATE" (taken at BEGIN, so writers queue up on busy_timeout
    /// instead of failing to upgrade a read lock) or "EXCLUSIVE".
    std::string begin = "DEFERRED";
    /// PostgreSQL: the isolation level of every transaction ("" the server's default, else
    /// "READ COMMITTED", "REPEATABLE READ" or "SERIALIZABLE"), rendered as
    /// BEGIN ISOLATION LEVEL ... .
    std::string isolation_level = "";
};

class Engine : public Connectable, public std::enable_shared_from_this<Engine> {
public:
    Engine(URL url, EngineOptions options);
    ~Engine() override;

    /// A new Connection (from the pool). Throws OperationalError when the database cannot be
    /// opened.
    Connection connect();
    /// A Connection with a transaction begun, as `with engine.begin() as conn`: commit it with
    /// conn.commit(); it rolls back if destroyed uncommitted.
    Connection begin();

    const URL& url() const noexcept;
    const EngineOptions& options() const noexcept;
    const Dialect& dialect() const noexcept;
    /// Closes idle pooled connections (the in-memory database's connection is kept).
    void dispose();

    void run_schema_work(const std::function<void(SchemaConnection&)>& work) override;
    void run_schema_work(const std::function<void(SchemaConnection&)>& work,
                         const SchemaWorkOptions& options) override;

    const std::shared_ptr<detail::EngineImpl>& impl() const noexcept { return impl_; }

private:
    std::shared_ptr<detail::EngineImpl> impl_;
};

std::shared_ptr<Engine> create_engine(const std::string& url, EngineOptions options = {});

/// The dialect of SQLite (also for compiling statements without a database).
const Dialect& sqlite_dialect();
/// The dialect of PostgreSQL (also for compiling statements without a server).
const Dialect& postgresql_dialect();

/// The spdlog logger "athanor.engine" (created on first use, writing to stdout).
std::shared_ptr<spdlog::logger> engine_logger();
/// A formatter writing SQLAlchemy's line shape, "2026-11-24 23:10:35,241 INFO athanor.engine
/// <message>", for sinks a program adds to the logger.
std::unique_ptr<spdlog::formatter> echo_formatter();

}  // namespace athanor
