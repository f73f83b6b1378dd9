#include "engine_impl.hpp"
#include <athanor/core/detail/hot.hpp>

#include <athanor/core/exc.hpp>
#include <athanor/core/schema.hpp>

#include <algorithm>
#include <cmath>

namespace athanor {

namespace detail {

ConnectionImpl::~ConnectionImpl() { release(); }

void ConnectionImpl::begin_slow() {
    if (!engine->shared_memory()) {
        if (db->tx_active) return;
    } else if (engine->acquire_lease()) {
        // This thread holds the in-memory transaction: ours, or another Connection's that we
        // join inside a savepoint of our own.
        if (db->tx_owner == this || joined_now()) return;
        if (db->tx_active) {
            join_savepoint = "sa_join_" + std::to_string(++db->savepoint_seq);
            std::string sql = engine->dialect.savepoint_sql(join_savepoint);
            if (engine->echo()) log_statement(sql, stats_no_key(std::chrono::steady_clock::now()), "()");
            join_after_writes = db->has_written();
            db->exec(sql);
            joined = true;
            joined_generation = db->generation;
            return;
        }
    }
    if (engine->echo()) engine->log("BEGIN (implicit)");
    try {
        db->exec(engine->begin_sql);
    } catch (...) {
        if (engine->shared_memory()) engine->release_lease();
        throw;
    }
    db->tx_active = true;
    db->tx_owner = this;
    db->savepoints.clear();
    joined = false;
}

bool ConnectionImpl::in_transaction() const noexcept {
    return db && db->tx_active && (db->tx_owner == this || joined_now());
}

void ConnectionImpl::commit() {
    if (joined_now()) {
        // The transaction is another Connection's. If it had only read, committing it for our
        // writes loses nothing of its. If it had written, a COMMIT would make its work durable
        // behind its back: our work is released into its transaction instead, and commits with it.
        std::string sql = engine->dialect.release_savepoint_sql(join_savepoint);
        if (engine->echo()) log_statement(sql, stats_no_key(std::chrono::steady_clock::now()), "()");
        db->exec(sql);
        joined = false;
        if (join_after_writes) return;
        if (engine->echo()) engine->log("COMMIT");
        db->exec("COMMIT");
        end_transaction();
        return;
    }
    if (!db->tx_active || db->tx_owner != this) return;
    if (engine->echo()) engine->log("COMMIT");
    try {
        db->exec("COMMIT");
    } catch (...) {
        // A server that refuses the COMMIT (a deferred constraint, a serialization failure)
        // has ended the transaction: it is rolled back, not left half-open.
        if (!db->in_db_transaction() || db->broken()) end_transaction();
        throw;
    }
    end_transaction();
}

void ConnectionImpl::rollback() {
    if (joined_now()) {
        joined = false;
        std::string sql = engine->dialect.rollback_to_savepoint_sql(join_savepoint);
        if (engine->echo()) log_statement(sql, stats_no_key(std::chrono::steady_clock::now()), "()");
        db->exec(sql);
        db->exec(engine->dialect.release_savepoint_sql(join_savepoint));
        return;
    }
    if (!db->tx_active || db->tx_owner != this) return;
    if (engine->echo()) engine->log("ROLLBACK");
    try {
        if (db->in_db_transaction() && !db->broken()) db->exec("ROLLBACK");
    } catch (...) {
        end_transaction();
        throw;
    }
    end_transaction();
}

void ConnectionImpl::end_transaction() noexcept {
    db->tx_active = false;
    db->tx_owner = nullptr;
    db->savepoints.clear();
    ++db->generation;
    joined = false;
    db->after_transaction();
    if (engine->shared_memory()) engine->release_lease();
}

void ConnectionImpl::release() noexcept {
    if (!db) return;
    try {
        if (in_transaction()) rollback();
    } catch (...) {
        // Closing must not throw; the database rolls back an unfinished transaction anyway.
    }
    engine->checkin(std::move(db));
    db = nullptr;
}

void ConnectionImpl::log_statement(const std::string& sql, const std::string& stats,
                                   const std::string& params) const {
    engine->log(sql);
    engine->log(stats + " " + params);
}

Result ConnectionImpl::execute(const Executable& stmt, const Params& params) {
    bool hit = false;
    auto compiled = stmt.compile(engine->dialect, &params, &hit);
    compiled->bind_values(params, bound, scratch);
    return run(compiled, bound, hit);
}

void ConnectionImpl::control(const std::string& sql) {
    auto t = std::chrono::steady_clock::now();
    if (engine->echo()) log_statement(sql, stats_no_key(t), "()");
    db->exec(sql);
}

Result ConnectionImpl::run(const std::shared_ptr<const Compiled>& compiled, const std::vector<const Value*>& values,
                           bool hit) {
    const Compiled& c = *compiled;
    autobegin();
    auto r = std::make_shared<ResultImpl>();
    DriverStatement* ps = db->acquire(c.sql, r->owned);
    if (engine->echo()) {
        std::string stats = c.kind == Compiled::Kind::text ? std::string("[raw sql]")
                            : hit ? stats_cached(c.created) : stats_generated(c.created);
        log_statement(c.sql, stats, repr_params(values));
    }
    // A key fetched by RETURNING only for lastrowid is not one of the statement's columns.
    const int shown = c.lastrowid_column >= 0 ? static_cast<int>(c.keys.size()) : ps->column_count;
    bool rows = shown > 0;
    bool row = ps->execute(values, rows);
    r->returns_rows = rows;
    r->columns = shown;
    // The rows share the compiled statement's keys (it stays alive with them), not a copy.
    r->keys = rows && !c.keys.empty() && c.keys.size() == static_cast<std::size_t>(shown)
                  ? std::shared_ptr<const std::vector<std::string>>(compiled, &c.keys)
                  : ps->keys;
    r->lastrowid = ps->lastrowid();
    if (row && c.lastrowid_column >= 0) r->lastrowid = ps->int_at(c.lastrowid_column);
    if (c.kind == Compiled::Kind::insert || c.kind == Compiled::Kind::update ||
        c.kind == Compiled::Kind::delete_ || (c.kind == Compiled::Kind::text && !rows))
        r->rowcount = ps->rowcount();
    if (c.kind == Compiled::Kind::insert && c.table) {
        for (const Column* pk : c.table->primary_key()) {
            Value v;
            bool found = false;
            for (std::size_t i = 0; i < c.binds.size(); ++i)
                if (c.binds[i].key == pk->name()) {
                    v = *values[i];
                    found = true;
                    break;
                }
            if ((!found || v.is_null()) && pk->autoincrement()) v = Value(r->lastrowid);
            r->inserted_pk.push_back(std::move(v));
        }
    }
    if (row && rows) {
        r->stmt = ps;
        ps->in_use = true;
        r->has_row = true;
        r->conn = shared_from_this();
        r->db_keep = db;
    } else {
        if (row) ps->reset();
        r->owned.reset();
    }
    return Result(std::move(r));
}

ATHANOR_HOT Result ConnectionImpl::execute_many(const Executable& stmt, const std::vector<Params>& sets) {
    if (sets.empty()) throw ArgumentError("executemany with an empty list of parameter sets");
    bool hit = false;
    auto compiled = stmt.compile(engine->dialect, &sets.front(), &hit);
    const Compiled& c = *compiled;
    // Resolve every set's values first (one lookup per parameter; a missing one is reported
    // before anything runs), then run the statement once per set.
    const std::size_t per = c.binds.size();
    std::vector<const Value*> all;
    all.reserve(per * sets.size());
    std::vector<Value> defaults;
    defaults.reserve(c.default_slots * sets.size());  // pointers into it must stay valid
    // The sets of one call usually hold their names in one order: each slot's value is looked
    // for first where the set before had it (one compare of a short name, in line).
    std::vector<std::size_t> hint(per, 0);
    auto find = [&](const Params& p, std::size_t s, const std::string& key) -> const Value* {
        const auto first = p.begin();
        const std::size_t n = p.size();
        if (hint[s] < n && detail::bytes_equal(first[static_cast<std::ptrdiff_t>(hint[s])].first, key))
            return &first[static_cast<std::ptrdiff_t>(hint[s])].second;
        for (std::size_t i = 0; i < n; ++i)  // as Params::find, remembering where
            if (first[static_cast<std::ptrdiff_t>(i)].first == key) {
                hint[s] = i;
                return &first[static_cast<std::ptrdiff_t>(i)].second;
            }
        return nullptr;
    };
    for (std::size_t g = 0; g < sets.size(); ++g) {
        const Params& p = sets[g];
        for (std::size_t s = 0; s < per; ++s) {
            const BindSlot& slot = c.binds[s];
            switch (slot.source) {
                case BindSlot::Source::literal: all.push_back(&slot.value); break;
                case BindSlot::Source::param: {
                    const Value* v = find(p, s, slot.key);
                    if (!v)
                        throw MissingParameterError("A value is required for bind parameter '" + slot.key +
                                                    "', in parameter group " + std::to_string(g));
                    all.push_back(v);
                    break;
                }
                case BindSlot::Source::column_default: {
                    const Value* v = find(p, s, slot.key);
                    if (!v) {
                        defaults.push_back(slot.column->default_value());
                        v = &defaults.back();
                    }
                    all.push_back(v);
                    break;
                }
            }
        }
    }
    autobegin();
    // executemany reports no new keys (as DBAPI's executemany): a RETURNING added only to fetch
    // them is left off, which spares the server a result row per execution.
    const bool plain = !c.sql_without_keys.empty();
    const std::string& sql = plain ? c.sql_without_keys : c.sql;
    std::unique_ptr<DriverStatement> owned;
    DriverStatement* ps = db->acquire(sql, owned);
    auto row = [&](std::size_t g) { return std::span<const Value* const>(all.data() + g * per, per); };
    if (engine->echo()) {
        std::vector<std::string> tuples;
        tuples.reserve(sets.size());
        for (std::size_t g = 0; g < sets.size(); ++g) tuples.push_back(repr_params(row(g)));
        log_statement(sql, hit ? stats_cached(c.created) : stats_generated(c.created), repr_multi(tuples));
    }
    // Only the last execution's key is reported: without RETURNING it is the statement's
    // lastrowid after the batch, not a list of every row's.
    std::vector<std::int64_t> keys;
    std::int64_t total = db->execute_batch(*ps, all, per, plain ? -1 : c.lastrowid_column, plain ? nullptr : &keys);
    auto r = std::make_shared<ResultImpl>();
    r->rowcount = total;
    r->lastrowid = plain ? ps->lastrowid() : keys.empty() ? 0 : keys.back();
    r->keys = std::make_shared<const std::vector<std::string>>();
    return Result(std::move(r));
}

void ConnectionImpl::execute_ddl(const std::string& sql) {
    autobegin();
    auto t = std::chrono::steady_clock::now();
    if (engine->echo()) log_statement(sql, stats_no_key(t), "()");
    db->exec(sql);
}

std::vector<std::vector<Value>> ConnectionImpl::execute_raw(const std::string& sql) {
    autobegin();
    if (engine->echo()) log_statement(sql, "[raw sql]", "()");
    return db->query(sql);
}

}  // namespace detail

// ---- Transaction ----------------------------------------------------------------------------

Transaction::Transaction(std::shared_ptr<detail::ConnectionImpl> conn, bool nested,
                         std::string savepoint, std::uint64_t generation)
    : conn_(std::move(conn)), nested_(nested), done_(false), savepoint_(std::move(savepoint)),
      generation_(generation) {}

Transaction& Transaction::operator=(Transaction&& o) noexcept {
    if (this != &o) {
        if (is_active()) {
            try {
                rollback();
            } catch (...) {
            }
        }
        conn_ = std::move(o.conn_);
        nested_ = o.nested_;
        done_ = o.done_;
        savepoint_ = std::move(o.savepoint_);
        generation_ = o.generation_;
        o.done_ = true;
    }
    return *this;
}

Transaction::~Transaction() {
    if (!is_active()) return;
    try {
        rollback();
    } catch (...) {
        // A destructor must not throw; the outer transaction still rolls back on close.
    }
}

bool Transaction::is_active() const noexcept {
    if (done_ || !conn_ || !conn_->db || !conn_->in_transaction() || conn_->db->generation != generation_)
        return false;
    if (!nested_) return true;
    const auto& sps = conn_->db->savepoints;  // released or rolled back savepoints are gone
    return std::find(sps.begin(), sps.end(), savepoint_) != sps.end();
}

namespace {
// Forgets `name` and every savepoint opened after it (RELEASE and ROLLBACK TO + RELEASE end
// the inner ones too).
void pop_savepoint(detail::DriverConnection& db, const std::string& name) {
    auto it = std::find(db.savepoints.begin(), db.savepoints.end(), name);
    db.savepoints.erase(it, db.savepoints.end());
}
}  // namespace

void Transaction::commit() {
    if (!is_active()) throw InvalidRequestError("This transaction is inactive");
    done_ = true;
    if (!nested_) {
        conn_->commit();
        return;
    }
    conn_->control(conn_->engine->dialect.release_savepoint_sql(savepoint_));
    pop_savepoint(*conn_->db, savepoint_);
}

void Transaction::rollback() {
    if (!is_active()) {
        done_ = true;
        return;
    }
    done_ = true;
    if (!nested_) {
        conn_->rollback();
        return;
    }
    conn_->control(conn_->engine->dialect.rollback_to_savepoint_sql(savepoint_));
    // Keep the database's savepoint stack in step with ours.
    conn_->db->exec(conn_->engine->dialect.release_savepoint_sql(savepoint_));
    pop_savepoint(*conn_->db, savepoint_);
}

// ---- Connection -----------------------------------------------------------------------------

Connection::Connection(std::shared_ptr<detail::ConnectionImpl> impl) : impl_(std::move(impl)) {}

Connection& Connection::operator=(Connection&& o) noexcept {
    if (this != &o) {
        close();
        impl_ = std::move(o.impl_);
    }
    return *this;
}

Connection::~Connection() { close(); }

detail::ConnectionImpl& Connection::live() const {
    if (!impl_ || !impl_->db) throw InvalidRequestError("This Connection is closed");
    return *impl_;
}

Result Connection::execute(const Executable& stmt, const Params& params) {
    return live().execute(stmt, params);
}
Result Connection::execute(const Executable& stmt, const std::vector<Params>& params) {
    return live().execute_many(stmt, params);
}

Transaction Connection::begin() {
    auto& c = live();
    if (c.in_transaction() && !c.db->savepoints.empty())
        throw InvalidRequestError("a transaction with savepoints is already begun on this Connection");
    c.autobegin();  // takes over an implicit transaction if one is open
    return Transaction(impl_, false, "", c.db->generation);
}

Transaction Connection::begin_nested() {
    auto& c = live();
    c.autobegin();
    std::string name = "sa_savepoint_" + std::to_string(++c.db->savepoint_seq);
    c.control(c.engine->dialect.savepoint_sql(name));
    c.db->savepoints.push_back(name);
    return Transaction(impl_, true, name, c.db->generation);
}

void Connection::commit() { live().commit(); }
void Connection::rollback() { live().rollback(); }
bool Connection::in_transaction() const noexcept { return impl_ && impl_->in_transaction(); }
bool Connection::in_nested_transaction() const noexcept {
    return in_transaction() && !impl_->db->savepoints.empty();
}

void Connection::close() noexcept {
    if (!impl_) return;
    impl_->release();
    impl_.reset();
}

const Dialect& Connection::dialect() const { return live().engine->dialect; }

void Connection::run_schema_work(const std::function<void(SchemaConnection&)>& work,
                                 const SchemaWorkOptions& options) {
    auto& c = live();
    if (options.foreign_keys_off && c.engine->dialect.name() == "sqlite" && detail::sqlite_enforces_foreign_keys(*c.db))
        throw MigrationError("this migration rebuilds tables, which needs SQLite's foreign keys off; that "
                             "cannot change inside a Connection's transaction: apply it on the Engine");
    run_schema_work(work);
}

void Connection::run_schema_work(const std::function<void(SchemaConnection&)>& work) {
    auto& c = live();
    c.autobegin();
    work(c);
}

}  // namespace athanor
