// Connection and Transaction, after SQLAlchemy 2.0's.
//
// A Connection begins a transaction on first use ("BEGIN (implicit)") and keeps it until
// commit() / rollback(); closing (or destroying) a Connection rolls back what was not
// committed. begin() returns a Transaction guard: commit() it, or its destructor rolls back.
// If an implicit transaction is already open, begin() takes it over. begin_nested() opens a
// SAVEPOINT whose Transaction rolls back (to the savepoint) or releases it.
//
// Errors: database errors are DBAPIError subclasses (IntegrityError, OperationalError,
// ProgrammingError...) carrying the SQL and parameters; after one the connection stays usable.
// A Connection is move-only and belongs to one thread.
#pragma once

#include <athanor/core/connectable.hpp>
#include <athanor/core/selectable.hpp>
#include <athanor/engine/result.hpp>

#include <memory>
#include <span>
#include <string>
#include <vector>

namespace athanor {

class Engine;
namespace detail {
struct ConnectionImpl;
}

class Transaction {
public:
    Transaction() = default;
    Transaction(std::shared_ptr<detail::ConnectionImpl> conn, bool nested, std::string savepoint,
                std::uint64_t generation);
    Transaction(Transaction&&) noexcept = default;
    Transaction& operator=(Transaction&& o) noexcept;
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    /// Rolls back if still active; never throws.
    ~Transaction();

    void commit();
    void rollback();
    /// Not yet committed or rolled back (and its connection's transaction still open).
    bool is_active() const noexcept;
    bool nested() const noexcept { return nested_; }

private:
    std::shared_ptr<detail::ConnectionImpl> conn_;
    bool nested_ = false;
    bool done_ = true;
    std::string savepoint_;
    std::uint64_t generation_ = 0;
};

/// A compiled statement checked out on a connection, executed many times with positional
/// values: the ORM's hot path (no compiling, no name lookups, no per-row allocation). Echo logs
/// each execution like Connection::execute. Releases the prepared statement on destruction.
class Cursor {
public:
    Cursor() = default;
    Cursor(std::shared_ptr<detail::ConnectionImpl> conn, std::shared_ptr<const Compiled> compiled,
           bool cache_hit);
    Cursor(Cursor&& o) noexcept;
    Cursor& operator=(Cursor&& o) noexcept;
    Cursor(const Cursor&) = delete;
    Cursor& operator=(const Cursor&) = delete;
    ~Cursor();

    /// Binds `values` (one per placeholder) and runs the statement; rows, if any, are then read
    /// with fetch_into. Throws the DBAPIError subclass of a failure.
    void execute(const std::vector<const Value*>& values);
    bool fetch_into(std::vector<Value>& out);
    /// The current row as views into the driver's buffers, without copying (a lookup by key:
    /// one row). The views stay valid until reset_row(), the next execute() or the Cursor's
    /// end; rows after this one are dropped. False when there is no row.
    bool row_views(std::vector<ValueView>& out);
    /// Ends the current execution: its rows are dropped and the database's read of them
    /// released (call it when done with row_views()). Never throws.
    void reset_row() noexcept;
    /// The execution's rows in turn, as views valid until the next call, reset_row(), the
    /// next execute() or the Cursor's end. False after the last row (the read is then over).
    bool next_views(std::vector<ValueView>& out);
    /// Whether queue() pays off: the driver sends queued executions together (PostgreSQL's
    /// pipeline mode: many executions per network round trip). False for SQLite, where
    /// execute() is as fast.
    bool pipelined() const noexcept;
    /// Queues one execution; `values` are copied or sent. On a pipelining driver it is sent at
    /// once and its result read later; otherwise it runs at flush_queue(). Either way the
    /// executions run in order, and their results, keys and first error are reported by
    /// flush_queue(). Another statement on the same connection ends a pipelined stream first
    /// (its results kept for flush_queue()). Echo logs each execution when queued.
    void queue(const std::vector<const Value*>& values);
    std::size_t queued() const noexcept { return queued_count_; }
    /// Runs the queued executions: appends each one's new key (lastrowid) to `keys` and its
    /// changed rows to `counts` when given, and returns the rows changed in all. On error
    /// (the DBAPIError of the first failing execution, with its parameters) the queue is
    /// emptied; what ran before it is in the transaction, to be rolled back.
    std::int64_t flush_queue(std::vector<std::int64_t>* keys = nullptr, std::vector<std::int64_t>* counts = nullptr);
    /// Runs the statement once per row of `all` (its placeholders' count of values each), in
    /// order, as one batch: what queue() and flush_queue() do, without copying the values (they
    /// must stay alive for the call). Returns the rows changed in all, which rowcount() then
    /// gives too (as after flush_queue()); lastrowid() is the last execution's key. Echo logs
    /// each execution. On error, the DBAPIError of the first failing execution; the ones before
    /// it ran, in the transaction.
    std::int64_t execute_many(std::span<const Value* const> all);
    /// Rows changed by the last execution; -1 after a SELECT (as SQLAlchemy's rowcount).
    std::int64_t rowcount() const noexcept { return rowcount_; }
    /// The key of the last row inserted (on SQLite, the connection's after a SELECT).
    std::int64_t lastrowid() const noexcept;
    const Compiled& compiled() const noexcept { return *compiled_; }

private:
    void release() noexcept;
    /// Echo's two lines for one execution with `values` (cold: only with echo on).
    void log_execution(std::span<const Value* const> values);
    /// The rows of `all` (`per` values each) through the driver's batch, in the transaction
    /// the caller began: flush_queue() and execute_many() after their checks. Sets and
    /// returns rowcount_.
    std::int64_t run_batch(std::span<const Value* const> all, std::size_t per, std::vector<std::int64_t>* keys,
                           std::vector<std::int64_t>* counts);
    std::shared_ptr<detail::ConnectionImpl> conn_;
    std::shared_ptr<const Compiled> compiled_;
    void* stmt_ = nullptr;   // detail::DriverStatement
    void* owned_ = nullptr;  // detail::DriverStatement owned when the cached one was busy
    bool hit_ = false;
    bool has_row_ = false;
    bool reset_pending_ = false;  // row_views() left the statement on a row
    int columns_ = 0;  // result columns shown (not a key fetched for lastrowid alone)
    std::vector<Value> queue_;  // queued executions' values, param_count each
    std::size_t queued_count_ = 0;
    std::int64_t rowcount_ = 0;
    std::int64_t lastrowid_ = 0;
    bool lazy_rowid_ = false;  // a SELECT ran: lastrowid() asks the driver when called
};

class Connection : public Connectable {
public:
    Connection() = default;
    explicit Connection(std::shared_ptr<detail::ConnectionImpl> impl);
    Connection(Connection&&) noexcept = default;
    Connection& operator=(Connection&& o) noexcept;
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;
    ~Connection() override;

    /// Executes a statement with one parameter set.
    Result execute(const Executable& stmt, const Params& params = {});
    /// executemany: one prepared statement, run once per parameter set.
    Result execute(const Executable& stmt, const std::vector<Params>& params);

    /// A Cursor for a compiled statement (see Cursor).
    Cursor cursor(std::shared_ptr<const Compiled> compiled, bool cache_hit = false);
    /// Compiles (memoized) and returns a Cursor.
    Cursor cursor(const Executable& stmt, const Params* params = nullptr);

    Transaction begin();
    Transaction begin_nested();
    void commit();
    void rollback();
    bool in_transaction() const noexcept;
    bool in_nested_transaction() const noexcept;

    void close() noexcept;
    bool closed() const noexcept { return impl_ == nullptr; }
    const Dialect& dialect() const;

    void run_schema_work(const std::function<void(SchemaConnection&)>& work) override;
    void run_schema_work(const std::function<void(SchemaConnection&)>& work,
                         const SchemaWorkOptions& options) override;

    const std::shared_ptr<detail::ConnectionImpl>& impl() const noexcept { return impl_; }

private:
    detail::ConnectionImpl& live() const;
    std::shared_ptr<detail::ConnectionImpl> impl_;
};

}  // namespace athanor
