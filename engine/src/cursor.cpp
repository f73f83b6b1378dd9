#include "engine_impl.hpp"

#include <athanor/core/detail/hot.hpp>
#include <athanor/core/exc.hpp>

namespace athanor {

using detail::DriverStatement;

Cursor::Cursor(std::shared_ptr<detail::ConnectionImpl> conn, std::shared_ptr<const Compiled> compiled,
               bool cache_hit)
    : conn_(std::move(conn)), compiled_(std::move(compiled)), hit_(cache_hit) {
    conn_->autobegin();  // the statement cache is the transaction's (in-memory lease)
    std::unique_ptr<DriverStatement> owned;
    DriverStatement* ps = conn_->db->acquire(compiled_->sql, owned);
    ps->in_use = true;
    stmt_ = ps;
    owned_ = owned.release();
    columns_ = compiled_->lastrowid_column >= 0 ? static_cast<int>(compiled_->keys.size()) : ps->column_count;
}

Cursor::Cursor(Cursor&& o) noexcept { *this = std::move(o); }

Cursor& Cursor::operator=(Cursor&& o) noexcept {
    if (this != &o) {
        release();
        conn_ = std::move(o.conn_);
        compiled_ = std::move(o.compiled_);
        stmt_ = o.stmt_;
        owned_ = o.owned_;
        hit_ = o.hit_;
        has_row_ = o.has_row_;
        reset_pending_ = o.reset_pending_;
        columns_ = o.columns_;
        queue_ = std::move(o.queue_);
        queued_count_ = o.queued_count_;
        o.queued_count_ = 0;
        rowcount_ = o.rowcount_;
        lastrowid_ = o.lastrowid_;
        lazy_rowid_ = o.lazy_rowid_;
        o.stmt_ = o.owned_ = nullptr;
    }
    return *this;
}

Cursor::~Cursor() { release(); }

std::int64_t Cursor::lastrowid() const noexcept {
    if (lazy_rowid_ && stmt_) return static_cast<DriverStatement*>(stmt_)->lastrowid();
    return lastrowid_;
}

void Cursor::release() noexcept {
    if (!stmt_) return;
    auto* ps = static_cast<DriverStatement*>(stmt_);
    ps->reset();
    ps->in_use = false;
    delete static_cast<DriverStatement*>(owned_);
    stmt_ = owned_ = nullptr;
}

ATHANOR_HOT void Cursor::execute(const std::vector<const Value*>& values) {
    if (!stmt_) throw InvalidRequestError("this Cursor is closed");
    auto* ps = static_cast<DriverStatement*>(stmt_);
    auto& c = *conn_;
    if (!c.db) throw InvalidRequestError("This Connection is closed");
    c.autobegin();
    if (has_row_ || reset_pending_) ps->reset();
    has_row_ = reset_pending_ = false;
    if (c.engine->echo()) log_execution(values);
    bool row = ps->execute(values, columns_ > 0);
    // A SELECT changes no row and no key: the driver is not asked (on SQLite, two calls that
    // each take the connection's mutex, per lookup).
    lazy_rowid_ = compiled_->kind == Compiled::Kind::select;
    if (lazy_rowid_) {
        rowcount_ = -1;
    } else {
        rowcount_ = ps->rowcount();
        lastrowid_ = ps->lastrowid();
    }
    if (row && compiled_->lastrowid_column >= 0) lastrowid_ = ps->int_at(compiled_->lastrowid_column);
    has_row_ = row && columns_ > 0;
    if (row && !has_row_) ps->reset();
}

bool Cursor::fetch_into(std::vector<Value>& out) {
    if (!has_row_) return false;
    auto* ps = static_cast<DriverStatement*>(stmt_);
    ps->read_row(columns_, out);
    has_row_ = false;
    has_row_ = ps->step();
    return true;
}

bool Cursor::pipelined() const noexcept { return conn_ && conn_->db && conn_->db->pipelines(); }

void Cursor::queue(const std::vector<const Value*>& values) {
    if (!stmt_) throw InvalidRequestError("this Cursor is closed");
    auto* ps = static_cast<DriverStatement*>(stmt_);
    auto& c = *conn_;
    if (!c.db) throw InvalidRequestError("This Connection is closed");
    if (static_cast<int>(values.size()) != ps->param_count)
        detail::raise_binding_count(*ps, values.size(), values, c.db->pipelines());
    if (c.engine->echo()) log_execution(values);
    if (c.db->pipelines()) {
        // Sent at once: the server works on it while the caller prepares the next row.
        c.autobegin();
        if (has_row_) ps->reset();
        has_row_ = false;
        ++queued_count_;
        c.db->stream(*ps, values, compiled_->lastrowid_column);
        return;
    }
    for (const Value* v : values) queue_.push_back(*v);
    ++queued_count_;
}

std::int64_t Cursor::flush_queue(std::vector<std::int64_t>* keys, std::vector<std::int64_t>* counts) {
    if (queued_count_ == 0) return 0;
    auto* ps = static_cast<DriverStatement*>(stmt_);
    auto& c = *conn_;
    std::vector<const Value*> all;
    all.reserve(queue_.size());
    for (const Value& v : queue_) all.push_back(&v);
    const auto per = static_cast<std::size_t>(ps->param_count);
    struct Clear {  // the queue is spent whether the batch succeeds or not
        Cursor& cur;
        ~Clear() {
            cur.queue_.clear();
            cur.queued_count_ = 0;
        }
    } clear{*this};
    if (c.db->pipelines()) {
        rowcount_ = c.db->finish_stream(*ps, keys, counts);
        return rowcount_;
    }
    c.autobegin();
    if (per == 0) {
        // No parameters: one execution per queued entry all the same.
        std::int64_t total = 0;
        for (std::size_t i = 0; i < queued_count_; ++i) {
            execute({});
            total += rowcount_;
            if (keys) keys->push_back(lastrowid_);
            if (counts) counts->push_back(rowcount_);
        }
        return total;
    }
    return run_batch(all, per, keys, counts);
}

std::int64_t Cursor::execute_many(std::span<const Value* const> all) {
    if (!stmt_) throw InvalidRequestError("this Cursor is closed");
    auto* ps = static_cast<DriverStatement*>(stmt_);
    auto& c = *conn_;
    if (!c.db) throw InvalidRequestError("This Connection is closed");
    const auto per = static_cast<std::size_t>(ps->param_count);
    if (per == 0 || all.size() % per != 0)
        detail::raise_binding_count(*ps, per == 0 ? all.size() : all.size() % per, all, c.db->pipelines());
    c.autobegin();
    if (c.engine->echo())
        for (std::size_t g = 0; g < all.size(); g += per) log_execution(all.subspan(g, per));
    lazy_rowid_ = false;
    std::vector<std::int64_t> keys;
    const bool returning = compiled_->lastrowid_column >= 0;
    run_batch(all, per, returning ? &keys : nullptr, nullptr);
    // Without RETURNING the statement holds the last execution's rowid and count.
    lastrowid_ = returning ? (keys.empty() ? 0 : keys.back()) : ps->lastrowid();
    return rowcount_;
}

std::int64_t Cursor::run_batch(std::span<const Value* const> all, std::size_t per, std::vector<std::int64_t>* keys,
                               std::vector<std::int64_t>* counts) {
    auto* ps = static_cast<DriverStatement*>(stmt_);
    if (has_row_ || reset_pending_) ps->reset();
    has_row_ = reset_pending_ = false;
    rowcount_ = conn_->db->execute_batch(*ps, all, per, compiled_->lastrowid_column, keys, counts);
    return rowcount_;
}

[[gnu::cold]] void Cursor::log_execution(std::span<const Value* const> values) {
    conn_->log_statement(compiled_->sql,
                         hit_ ? detail::stats_cached(compiled_->created) : detail::stats_generated(compiled_->created),
                         detail::repr_params(values));
    hit_ = true;
}

ATHANOR_HOT void Cursor::reset_row() noexcept {
    if (!stmt_ || !(has_row_ || reset_pending_)) return;
    static_cast<DriverStatement*>(stmt_)->reset();
    has_row_ = reset_pending_ = false;
}

ATHANOR_HOT bool Cursor::row_views(std::vector<ValueView>& out) {
    if (!has_row_) return false;
    static_cast<DriverStatement*>(stmt_)->read_views(columns_, out);
    has_row_ = false;
    reset_pending_ = true;
    return true;
}

ATHANOR_HOT bool Cursor::next_views(std::vector<ValueView>& out) {
    auto* ps = static_cast<DriverStatement*>(stmt_);
    if (reset_pending_ && !has_row_) {  // the previous row was read: on to the next one
        has_row_ = ps->step();
        if (!has_row_) {  // the end: the read is over
            ps->reset();
            reset_pending_ = false;
            return false;
        }
    }
    if (!has_row_) return false;
    ps->read_views(columns_, out);
    has_row_ = false;
    reset_pending_ = true;
    return true;
}

Cursor Connection::cursor(std::shared_ptr<const Compiled> compiled, bool cache_hit) {
    live();
    return Cursor(impl_, std::move(compiled), cache_hit);
}

Cursor Connection::cursor(const Executable& stmt, const Params* params) {
    auto& c = live();
    bool hit = false;
    auto compiled = stmt.compile(c.engine->dialect, params, &hit);
    return Cursor(impl_, std::move(compiled), hit);
}

}  // namespace athanor
