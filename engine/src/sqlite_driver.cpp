// The SQLite driver: SQLiteCpp opens the database; statements run through sqlite3_* directly
// (bind, step, column) because that is the hot path. SQLite's headers stay in this file.
#include "engine_impl.hpp"

#include <athanor/core/detail/hot.hpp>
#include <athanor/core/exc.hpp>

#include <SQLiteCpp/Database.h>
#include <sqlite3.h>

#include <cctype>
#include <cmath>
#include <limits>

namespace athanor::detail {

namespace {

/// Throws the DBAPIError subclass matching SQLite's code, with the SQL and parameters.
[[noreturn]] void raise_sqlite(sqlite3* db, int rc, const std::string& sql, const std::string& params) {
    int ext = db ? sqlite3_extended_errcode(db) : rc;
    if ((ext & 0xff) != (rc & 0xff)) ext = rc;
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    switch (rc & 0xff) {
        case SQLITE_CONSTRAINT: throw IntegrityError("IntegrityError", msg, sql, params, ext);
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
        case SQLITE_CANTOPEN:
        case SQLITE_IOERR:
        case SQLITE_FULL:
        case SQLITE_READONLY:
        case SQLITE_PROTOCOL:
        case SQLITE_NOMEM:
        case SQLITE_INTERRUPT:
        case SQLITE_ABORT:
        case SQLITE_PERM:
        case SQLITE_NOLFS:
        case SQLITE_AUTH: throw OperationalError("OperationalError", msg, sql, params, ext);
        case SQLITE_RANGE:
        case SQLITE_MISUSE: throw ProgrammingError("ProgrammingError", msg, sql, params, ext);
        case SQLITE_TOOBIG:
        case SQLITE_MISMATCH: throw DataError("DataError", msg, sql, params, ext);
        case SQLITE_INTERNAL: throw InternalError("InternalError", msg, sql, params, ext);
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB: throw DatabaseError("DatabaseError", msg, sql, params, ext);
        case SQLITE_ERROR:
            if (msg.find("syntax error") != std::string::npos || msg.rfind("no such", 0) == 0 ||
                msg.find("has no column") != std::string::npos ||
                msg.find("ambiguous column") != std::string::npos ||
                msg.find("incomplete input") != std::string::npos ||
                msg.find("already exists") != std::string::npos ||
                msg.find("values for") != std::string::npos)
                throw ProgrammingError("ProgrammingError", msg, sql, params, ext);
            throw OperationalError("OperationalError", msg, sql, params, ext);
        default: throw DatabaseError("DatabaseError", msg, sql, params, ext);
    }
}

struct SqliteStatement final : DriverStatement {
    SqliteStatement(sqlite3* db, const std::string& text) : db(db) {
        sql = text;
        if (text.find('\0') != std::string::npos)
            throw ProgrammingError("ProgrammingError", "the SQL text contains a NUL character", text, "()",
                                   SQLITE_MISUSE);
        const char* tail = nullptr;
        int rc = sqlite3_prepare_v2(db, text.c_str(), static_cast<int>(text.size()), &stmt, &tail);
        if (rc != SQLITE_OK) {
            sqlite3_finalize(stmt);
            stmt = nullptr;
            raise_sqlite(db, rc, text, "()");
        }
        if (!stmt)
            throw ProgrammingError("ProgrammingError", "the SQL text holds no statement", text, "()", SQLITE_MISUSE);
        if (tail && !only_trailing_noise(tail, text.c_str() + text.size())) {
            sqlite3_finalize(stmt);
            stmt = nullptr;
            throw ProgrammingError("ProgrammingError", "You can only execute one statement at a time.", text,
                                   "()", SQLITE_MISUSE);
        }
        param_count = sqlite3_bind_parameter_count(stmt);
        readonly = sqlite3_stmt_readonly(stmt) != 0;
        bound_int.assign(static_cast<std::size_t>(param_count), kNotInt);
        column_count = sqlite3_column_count(stmt);
        auto k = std::make_shared<std::vector<std::string>>();
        for (int i = 0; i < column_count; ++i) k->push_back(sqlite3_column_name(stmt, i));
        keys = std::move(k);
    }
    ~SqliteStatement() override { sqlite3_finalize(stmt); }

    [[gnu::always_inline]] void bind(std::span<const Value* const> values, bool transient) {
        auto mode = transient ? SQLITE_TRANSIENT : SQLITE_STATIC;
        for (std::size_t i = 0; i < values.size(); ++i) {
            const Value& v = *values[i];
            int idx = static_cast<int>(i) + 1;
            int rc = SQLITE_OK;
            if (v.kind() != Value::Kind::integer) bound_int[i] = kNotInt;
            switch (v.kind()) {
                case Value::Kind::null: rc = sqlite3_bind_null(stmt, idx); break;
                case Value::Kind::integer: {
                    // Bindings outlive sqlite3_reset(): an integer bound last time (a LIMIT, a
                    // repeated foreign key) is bound already.
                    const std::int64_t x = *v.if_int();
                    if (bound_int[i] == x && x != kNotInt) continue;
                    rc = sqlite3_bind_int64(stmt, idx, x);
                    bound_int[i] = rc == SQLITE_OK ? x : kNotInt;
                    break;
                }
                case Value::Kind::real:
                    // SQLite stores NaN as NULL, which would then fail to load as a number.
                    if (std::isnan(*v.if_double()))
                        throw ArgumentError("parameter " + std::to_string(idx) +
                                            " is NaN, which SQLite cannot store (it would become NULL); SQL: " + sql);
                    rc = sqlite3_bind_double(stmt, idx, *v.if_double());
                    break;
                case Value::Kind::text: {
                    const std::string& t = *v.if_text();
                    rc = sqlite3_bind_text(stmt, idx, t.data(), static_cast<int>(t.size()), mode);
                    break;
                }
                case Value::Kind::blob: {
                    const Blob& b = *v.if_blob();
                    rc = b.empty() ? sqlite3_bind_zeroblob(stmt, idx, 0)
                                   : sqlite3_bind_blob(stmt, idx, b.data(), static_cast<int>(b.size()), mode);
                    break;
                }
            }
            if (rc != SQLITE_OK) raise_sqlite(db, rc, sql, repr_params(values));
        }
    }

    ATHANOR_HOT bool execute(std::span<const Value* const> values, bool rows_outlive_values) override {
        if (static_cast<int>(values.size()) != param_count)
            raise_binding_count(*this, values.size(), values, false);
        bind(values, rows_outlive_values);
        int rc = sqlite3_step(stmt);
        changes = 0;
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
            sqlite3_reset(stmt);
            raise_sqlite(db, rc, sql, repr_params(values));
        }
        if (!readonly) {  // a read-only statement leaves both as they were: read when asked
            changes = sqlite3_changes64(db);
            rowid = sqlite3_last_insert_rowid(db);
        }
        if (rc == SQLITE_DONE) sqlite3_reset(stmt);
        return rc == SQLITE_ROW;
    }

    void read_row(int n, std::vector<Value>& out) override {
        read_views(n, views);
        if (out.empty()) {  // a new row (a Result's): each value built in its place
            out.reserve(views.size());
            for (const ValueView& v : views) out.emplace_back(v);
            return;
        }
        out.resize(views.size());
        for (std::size_t i = 0; i < views.size(); ++i) {
            if (views[i].kind == Value::Kind::text)
                if (auto t = const_cast<std::string*>(out[i].if_text())) {  // reuse the buffer
                    t->assign(views[i].bytes);
                    continue;
                }
            out[i] = Value(views[i]);
        }
    }

    ATHANOR_HOT void read_views(int n, std::vector<ValueView>& out) override {
        size_scratch(out, static_cast<std::size_t>(n));
        // One sqlite3_column_value() per column, then the sqlite3_value_*() readers: each
        // sqlite3_column_*() call checks the statement and the column again, four calls for a
        // text column. The value is "unprotected" (SQLite's word): reading it is safe while
        // one thread at a time uses the connection, as a Connection does (an in-memory
        // engine's shared connection is leased to one thread per transaction).
        ValueView* v = out.data();
        for (int i = 0; i < n; ++i, ++v) {
            sqlite3_value* sv = sqlite3_column_value(stmt, i);
            switch (sqlite3_value_type(sv)) {
                case SQLITE_INTEGER:
                    v->kind = Value::Kind::integer;
                    v->i = sqlite3_value_int64(sv);
                    break;
                case SQLITE_FLOAT:
                    v->kind = Value::Kind::real;
                    v->d = sqlite3_value_double(sv);
                    break;
                case SQLITE_TEXT: {
                    v->kind = Value::Kind::text;
                    auto p = reinterpret_cast<const char*>(sqlite3_value_text(sv));
                    v->bytes = std::string_view(p, static_cast<std::size_t>(sqlite3_value_bytes(sv)));
                    break;
                }
                case SQLITE_BLOB: {
                    v->kind = Value::Kind::blob;
                    auto p = static_cast<const char*>(sqlite3_value_blob(sv));
                    v->bytes = std::string_view(p, static_cast<std::size_t>(sqlite3_value_bytes(sv)));
                    break;
                }
                default: v->kind = Value::Kind::null; break;
            }
        }
    }

    std::int64_t int_at(int i) override { return sqlite3_column_int64(stmt, i); }

    ATHANOR_HOT bool step() override {
        int rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW) return true;
        sqlite3_reset(stmt);
        if (rc != SQLITE_DONE) raise_sqlite(db, rc, sql, "()");
        return false;
    }
    ATHANOR_HOT void reset() noexcept override { sqlite3_reset(stmt); }
    std::int64_t rowcount() const noexcept override { return readonly ? sqlite3_changes64(db) : changes; }
    std::int64_t lastrowid() const noexcept override { return readonly ? sqlite3_last_insert_rowid(db) : rowid; }

    sqlite3* db;
    sqlite3_stmt* stmt = nullptr;
    std::int64_t changes = 0;
    std::int64_t rowid = 0;
    bool readonly = false;  // sqlite3_stmt_readonly(): changes no row (SELECT, BEGIN, ...)
    // The integer bound to each parameter, or kNotInt (nothing, or another kind, bound).
    static constexpr std::int64_t kNotInt = std::numeric_limits<std::int64_t>::min();
    std::vector<std::int64_t> bound_int;
    std::vector<ValueView> views;  // read_row()'s scratch: the row read once, then copied
};

SQLite::Database open_database(const URL& url, const EngineOptions& options) {
    std::string file = url.is_memory() ? std::string(":memory:") : url.database;
    int flags = SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE | SQLITE_OPEN_URI;
    // A pooled file connection is used by one Connection (one thread) at a time, so SQLite's
    // per-call mutexes are not needed; the shared in-memory connection keeps them.
    if (!url.is_memory()) flags |= SQLITE_OPEN_NOMUTEX;
    if (auto it = url.query.find("mode"); it != url.query.end() && it->second == "ro")
        flags = SQLite::OPEN_READONLY | SQLITE_OPEN_NOMUTEX;
    try {
        return SQLite::Database(file, flags, static_cast<int>(options.busy_timeout * 1000));
    } catch (const SQLite::Exception& e) {
        throw OperationalError("OperationalError", std::string("unable to open database file '") + file + "': " + e.what(),
                               "", "()", e.getExtendedErrorCode());
    }
}

struct SqliteConnection final : DriverConnection {
    SqliteConnection(const URL& url, const EngineOptions& options)
        : DriverConnection(options.statement_cache_size), db(open_database(url, options)) {
        if (options.wal && !url.is_memory()) exec("PRAGMA journal_mode=WAL");
        if (options.foreign_keys) exec("PRAGMA foreign_keys=ON");
    }
    ~SqliteConnection() override { cache.clear(); }  // statements before the database

    sqlite3* handle() const noexcept { return db.getHandle(); }

    std::unique_ptr<DriverStatement> prepare(const std::string& sql) override {
        return std::make_unique<SqliteStatement>(handle(), sql);
    }

    void exec(const std::string& sql) override {
        SqliteStatement ps(handle(), sql);
        int rc;
        while ((rc = sqlite3_step(ps.stmt)) == SQLITE_ROW) {
        }
        if (rc != SQLITE_DONE) raise_sqlite(handle(), rc, sql, "()");
    }

    std::vector<std::vector<Value>> query(const std::string& sql) override {
        SqliteStatement ps(handle(), sql);
        std::vector<std::vector<Value>> rows;
        int rc;
        while ((rc = sqlite3_step(ps.stmt)) == SQLITE_ROW) {
            rows.emplace_back();
            ps.read_row(ps.column_count, rows.back());
        }
        if (rc != SQLITE_DONE) raise_sqlite(handle(), rc, sql, "()");
        return rows;
    }

    /// The executemany loop for a statement that returns no rows (an INSERT, UPDATE or DELETE
    /// without RETURNING), in one function: bind, step, count, reset, with no virtual call and
    /// no rowid read per row unless `keys` asks for it. Others take the general loop.
    ATHANOR_HOT std::int64_t execute_batch(DriverStatement& s, std::span<const Value* const> all, std::size_t per,
                                           int lastrowid_column, std::vector<std::int64_t>* keys,
                                           std::vector<std::int64_t>* counts) override {
        auto& ps = static_cast<SqliteStatement&>(s);
        if (lastrowid_column >= 0 || ps.column_count > 0 || ps.readonly || per == 0 ||
            static_cast<int>(per) != ps.param_count) [[unlikely]]
            return DriverConnection::execute_batch(s, all, per, lastrowid_column, keys, counts);
        sqlite3* h = handle();
        std::int64_t total = 0;
        std::int64_t changed = 0;
        const std::size_t n = all.size() / per;
        for (std::size_t g = 0; g < n; ++g) {
            const auto row = all.subspan(g * per, per);
            ps.bind(row, false);
            const int rc = sqlite3_step(ps.stmt);
            if (rc != SQLITE_DONE) [[unlikely]] {
                ps.changes = 0;
                sqlite3_reset(ps.stmt);
                raise_sqlite(h, rc, ps.sql, repr_params(row));
            }
            changed = sqlite3_changes64(h);
            total += changed;
            if (keys) keys->push_back(sqlite3_last_insert_rowid(h));
            if (counts) counts->push_back(changed);
            sqlite3_reset(ps.stmt);
        }
        // As after execute(): rowcount() and lastrowid() tell of the last execution.
        ps.changes = changed;
        ps.rowid = sqlite3_last_insert_rowid(h);
        return total;
    }

    bool in_db_transaction() const noexcept override { return sqlite3_get_autocommit(handle()) == 0; }
    bool has_written() const noexcept override {
        return sqlite3_txn_state(handle(), nullptr) == SQLITE_TXN_WRITE;
    }

    SQLite::Database db;
};

}  // namespace

// What follows a statement: whitespace, comments and semicolons may; anything else is a
// second statement.
bool only_trailing_noise(const char* p, const char* end) {
    while (p < end) {
        if (*p == ';' || std::isspace(static_cast<unsigned char>(*p))) {
            ++p;
        } else if (p + 1 < end && p[0] == '-' && p[1] == '-') {
            while (p < end && *p != '\n') ++p;
        } else if (p + 1 < end && p[0] == '/' && p[1] == '*') {
            const char* close = p + 2;
            while (close + 1 < end && !(close[0] == '*' && close[1] == '/')) ++close;
            if (close + 1 >= end) return true;  // an unterminated comment runs to the end
            p = close + 2;
        } else {
            return false;
        }
    }
    return true;
}

std::shared_ptr<DriverConnection> open_sqlite(const URL& url, const EngineOptions& options) {
    return std::make_shared<SqliteConnection>(url, options);
}

void raise_binding_count(const DriverStatement& ps, std::size_t given, std::span<const Value* const> values,
                         bool server) {
    std::string msg = "Incorrect number of bindings supplied. The current statement uses " +
                      std::to_string(ps.param_count) + ", and there are " + std::to_string(given) + " supplied.";
    if (server) throw ProgrammingError("ProgrammingError", msg, ps.sql, repr_params(values), "08P01", "libpq");
    throw ProgrammingError("ProgrammingError", msg, ps.sql, repr_params(values), SQLITE_RANGE);
}

}  // namespace athanor::detail
