#include "engine_impl.hpp"

#include <athanor/core/exc.hpp>

namespace athanor {

using detail::PreparedStatement;

Cursor::Cursor(std::shared_ptr<detail::ConnectionImpl> conn, std::shared_ptr<const Compiled> compiled,
               bool cache_hit)
    : conn_(std::move(conn)), compiled_(std::move(compiled)), hit_(cache_hit) {
    conn_->autobegin();  // the statement cache is the transaction's (in-memory lease)
    std::unique_ptr<PreparedStatement> owned;
    PreparedStatement* ps = conn_->db->acquire(compiled_->sql, owned);
    ps->in_use = true;
    stmt_ = ps;
    owned_ = owned.release();
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
        rowcount_ = o.rowcount_;
        lastrowid_ = o.lastrowid_;
        o.stmt_ = o.owned_ = nullptr;
    }
    return *this;
}

Cursor::~Cursor() { release(); }

void Cursor::release() noexcept {
    if (!stmt_) return;
    auto* ps = static_cast<PreparedStatement*>(stmt_);
    sqlite3_reset(ps->stmt);
    ps->in_use = false;
    delete static_cast<PreparedStatement*>(owned_);
    stmt_ = owned_ = nullptr;
}

void Cursor::execute(const std::vector<const Value*>& values) {
    if (!stmt_) throw InvalidRequestError("this Cursor is closed");
    auto* ps = static_cast<PreparedStatement*>(stmt_);
    auto& c = *conn_;
    if (!c.db) throw InvalidRequestError("This Connection is closed");
    c.autobegin();
    if (has_row_) sqlite3_reset(ps->stmt);
    if (c.engine->echo()) {
        c.log_statement(compiled_->sql,
                        hit_ ? detail::stats_cached(compiled_->created) : detail::stats_generated(compiled_->created),
                        detail::repr_params(values));
        hit_ = true;
    }
    if (static_cast<int>(values.size()) != ps->param_count)
        throw ProgrammingError("ProgrammingError", "Incorrect number of bindings supplied", compiled_->sql,
                               detail::repr_params(values), SQLITE_RANGE);
    bool rows = ps->column_count > 0;
    detail::bind_all(*ps, values, rows);
    int rc = sqlite3_step(ps->stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        sqlite3_reset(ps->stmt);
        has_row_ = false;
        detail::raise_sqlite(c.db->handle(), rc, compiled_->sql, detail::repr_params(values));
    }
    rowcount_ = sqlite3_changes(c.db->handle());
    lastrowid_ = sqlite3_last_insert_rowid(c.db->handle());
    has_row_ = rc == SQLITE_ROW;
    if (!has_row_) sqlite3_reset(ps->stmt);
}

bool Cursor::fetch_into(std::vector<Value>& out) {
    if (!has_row_) return false;
    auto* ps = static_cast<PreparedStatement*>(stmt_);
    detail::read_row(ps->stmt, ps->column_count, out);
    int rc = sqlite3_step(ps->stmt);
    if (rc == SQLITE_ROW) return true;
    has_row_ = false;
    sqlite3_reset(ps->stmt);
    if (rc != SQLITE_DONE) detail::raise_sqlite(conn_->db->handle(), rc, compiled_->sql, "()");
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
