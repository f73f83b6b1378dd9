// The PostgreSQL driver, on libpq. Statements are prepared server-side once per connection
// (named "athanor_<n>", parameter types inferred by the server) and executed with text
// parameters (bytea in binary); results come back in text format and are converted by column
// type: integers, floats and numeric to numbers, boolean to 0/1 (as SQLite stores them),
// bytea to a Blob, timestamps to athanor's DateTime text. executemany runs in libpq's pipeline
// mode: many executions per round trip. libpq's headers stay in this file.
#include "engine_impl.hpp"

#include <athanor/core/exc.hpp>

#include <libpq-fe.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>
#include <exception>
#include <utility>

namespace athanor::detail {

namespace {

// Type OIDs of pg_catalog.pg_type (stable since PostgreSQL 7).
constexpr Oid BOOLOID = 16, BYTEAOID = 17, INT8OID = 20, INT2OID = 21, INT4OID = 23, OIDOID = 26,
              FLOAT4OID = 700, FLOAT8OID = 701, NUMERICOID = 1700, TIMESTAMPOID = 1114;

const char* const kDriver = "libpq";

/// Throws the DBAPIError subclass for a failed result (or a lost connection), by SQLSTATE
/// class as psycopg2 and asyncpg map them.
[[noreturn]] void raise_pg(PGconn* conn, const PGresult* res, const std::string& sql, const std::string& params) {
    const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
    std::string msg;
    if (res) {
        if (const char* primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)) msg = primary;
        if (const char* detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL)) msg += "\nDETAIL:  " + std::string(detail);
    }
    if (msg.empty()) {
        msg = res && *PQresultErrorMessage(res) ? PQresultErrorMessage(res) : PQerrorMessage(conn);
        while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
        if (msg.empty()) msg = "the server returned no result";
    }
    std::string code = state ? state : (PQstatus(conn) == CONNECTION_BAD ? "08006" : "");
    std::string cls = code.substr(0, 2);
    auto raise = [&](auto tag, const char* kind) -> void {
        using E = typename decltype(tag)::type;
        throw E(kind, msg, sql, params, code, kDriver);
    };
    if (PQstatus(conn) == CONNECTION_BAD || cls == "08" || cls == "57" || cls == "53" || cls == "58" ||
        cls == "40" || cls == "55")
        raise(std::type_identity<OperationalError>{}, "OperationalError");
    if (cls == "23") raise(std::type_identity<IntegrityError>{}, "IntegrityError");
    if (cls == "42" || cls == "26" || cls == "34" || cls == "3D" || cls == "3F" || cls == "07")
        raise(std::type_identity<ProgrammingError>{}, "ProgrammingError");
    if (cls == "22") raise(std::type_identity<DataError>{}, "DataError");
    if (cls == "0A") raise(std::type_identity<NotSupportedError>{}, "NotSupportedError");
    if (cls == "XX" || cls == "25" || cls == "2D") raise(std::type_identity<InternalError>{}, "InternalError");
    raise(std::type_identity<DatabaseError>{}, "DatabaseError");
    std::abort();  // unreachable: raise throws
}

/// RAII for a PGresult.
struct PgResult {
    PGresult* r = nullptr;
    PgResult() = default;
    explicit PgResult(PGresult* p) : r(p) {}
    PgResult(const PgResult&) = delete;
    PgResult& operator=(const PgResult&) = delete;
    PgResult& operator=(PGresult* p) {
        if (r) PQclear(r);
        r = p;
        return *this;
    }
    ~PgResult() {
        if (r) PQclear(r);
    }
    bool ok() const { return r && (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK); }
};

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return 0;
}

/// bytea's text output ("\x0a1b..."; the hex format, the default since 9.0) into `out`.
void decode_bytea(const char* p, std::size_t len, std::string& out) {
    out.clear();
    if (len >= 2 && p[0] == '\\' && p[1] == 'x') {
        out.reserve((len - 2) / 2);
        for (std::size_t i = 2; i + 1 < len; i += 2)
            out.push_back(static_cast<char>(hex_digit(p[i]) * 16 + hex_digit(p[i + 1])));
        return;
    }
    // The escape format (bytea_output = 'escape'): \\ and \ooo octal.
    for (std::size_t i = 0; i < len; ++i) {
        if (p[i] == '\\' && i + 1 < len && p[i + 1] == '\\') {
            out.push_back('\\');
            ++i;
        } else if (p[i] == '\\' && i + 3 < len) {
            out.push_back(static_cast<char>((p[i + 1] - '0') * 64 + (p[i + 2] - '0') * 8 + (p[i + 3] - '0')));
            i += 3;
        } else {
            out.push_back(p[i]);
        }
    }
}

/// "2026-11-24 23:10:35.5" -> "2026-11-24 23:10:35.500000": athanor's DateTime text, so a
/// value read back compares equal to the one written.
void normalize_timestamp(const char* p, std::size_t len, std::string& out) {
    out.assign(p, len);
    if (len < 19 || out[10] != ' ' || out.find_first_of("+-", 19) != std::string::npos ||
        out.find(' ', 11) != std::string::npos)
        return;  // BC dates, infinity, anything unusual: left as the server wrote it
    if (len == 19) out += ".000000";
    else if (out[19] == '.' && len < 26) out.append(26 - len, '0');
}

bool parse_int(const char* p, std::size_t len, std::int64_t& v) {
    auto [ptr, ec] = std::from_chars(p, p + len, v);
    return ec == std::errc() && ptr == p + len;
}

double parse_double(const char* p) {
    if (std::strcmp(p, "NaN") == 0) return std::nan("");
    if (std::strcmp(p, "Infinity") == 0) return HUGE_VAL;
    if (std::strcmp(p, "-Infinity") == 0) return -HUGE_VAL;
    return std::strtod(p, nullptr);
}

// Whether the text holds no statement: whitespace, semicolons and comments only.
bool no_statement(const std::string& sql) { return only_trailing_noise(sql.data(), sql.data() + sql.size()); }

struct PgConnection;

struct PgStatement final : DriverStatement {
    PgStatement(PgConnection& owner, const std::string& text);
    ~PgStatement() override;

    /// Throws DataError for a value PostgreSQL cannot take (text with a NUL character).
    void validate(std::span<const Value* const> values) const;
    /// Fills values_/lengths_/formats_ for one execution (validated first).
    void encode(std::span<const Value* const> values) noexcept;
    bool execute(std::span<const Value* const> values, bool rows_outlive_values) override;
    /// Takes the finished result of execute() (pipelined results are read by read_window).
    bool take(PGresult* res, std::span<const Value* const> values);

    void read_row(int n, std::vector<Value>& out) override {
        out.resize(static_cast<std::size_t>(n));
        for (int i = 0; i < n; ++i) {
            Value& v = out[static_cast<std::size_t>(i)];
            if (PQgetisnull(result.r, row, i)) {
                v = Value();
                continue;
            }
            const char* p = PQgetvalue(result.r, row, i);
            auto len = static_cast<std::size_t>(PQgetlength(result.r, row, i));
            switch (types[static_cast<std::size_t>(i)]) {
                case BOOLOID: v = Value(std::int64_t{p[0] == 't' ? 1 : 0}); break;
                case INT2OID:
                case INT4OID:
                case INT8OID:
                case OIDOID: {
                    std::int64_t x = 0;
                    if (parse_int(p, len, x)) v = Value(x);
                    else v = Value(std::string(p, len));
                    break;
                }
                case FLOAT4OID:
                case FLOAT8OID:
                case NUMERICOID: v = Value(parse_double(p)); break;
                case BYTEAOID: {
                    decode_bytea(p, len, scratch);
                    auto b = reinterpret_cast<const std::uint8_t*>(scratch.data());
                    v = Value(Blob(b, b + scratch.size()));
                    break;
                }
                case TIMESTAMPOID:
                    normalize_timestamp(p, len, scratch);
                    v = Value(scratch);
                    break;
                default:
                    if (auto t = const_cast<std::string*>(v.if_text())) t->assign(p, len);  // reuse
                    else v = Value(std::string(p, len));
            }
        }
    }

    void read_views(int n, std::vector<ValueView>& out) override {
        out.resize(static_cast<std::size_t>(n));
        if (view_buffers.size() < static_cast<std::size_t>(n)) view_buffers.resize(static_cast<std::size_t>(n));
        for (int i = 0; i < n; ++i) {
            ValueView& v = out[static_cast<std::size_t>(i)];
            v = ValueView{};
            if (PQgetisnull(result.r, row, i)) continue;
            const char* p = PQgetvalue(result.r, row, i);
            auto len = static_cast<std::size_t>(PQgetlength(result.r, row, i));
            std::string& buf = view_buffers[static_cast<std::size_t>(i)];
            switch (types[static_cast<std::size_t>(i)]) {
                case BOOLOID:
                    v.kind = Value::Kind::integer;
                    v.i = p[0] == 't' ? 1 : 0;
                    break;
                case INT2OID:
                case INT4OID:
                case INT8OID:
                case OIDOID:
                    if (parse_int(p, len, v.i)) {
                        v.kind = Value::Kind::integer;
                    } else {
                        v.kind = Value::Kind::text;
                        v.bytes = std::string_view(p, len);
                    }
                    break;
                case FLOAT4OID:
                case FLOAT8OID:
                case NUMERICOID:
                    v.kind = Value::Kind::real;
                    v.d = parse_double(p);
                    break;
                case BYTEAOID:
                    decode_bytea(p, len, buf);
                    v.kind = Value::Kind::blob;
                    v.bytes = buf;
                    break;
                case TIMESTAMPOID:
                    normalize_timestamp(p, len, buf);
                    v.kind = Value::Kind::text;
                    v.bytes = buf;
                    break;
                default:
                    v.kind = Value::Kind::text;
                    v.bytes = std::string_view(p, len);
            }
        }
    }

    std::int64_t int_at(int i) override {
        std::int64_t x = 0;
        if (!PQgetisnull(result.r, row, i)) {
            const char* p = PQgetvalue(result.r, row, i);
            parse_int(p, static_cast<std::size_t>(PQgetlength(result.r, row, i)), x);
        }
        return x;
    }

    bool step() override {
        if (result.r && ++row < rows) return true;
        reset();
        return false;
    }
    void reset() noexcept override {
        result = nullptr;
        row = 0;
        rows = 0;
    }
    std::int64_t rowcount() const noexcept override { return changes; }

    PgConnection& conn;
    std::string name;
    std::vector<Oid> types;  // result column types
    PgResult result;
    int row = 0;
    int rows = 0;
    std::int64_t changes = 0;
    // Parameter buffers, reused across executions.
    std::vector<const char*> values_;
    std::vector<int> lengths_;
    std::vector<int> formats_;
    std::vector<std::string> text_;
    std::string scratch;
    std::vector<std::string> view_buffers;
    // A stream of pipelined executions (Cursor::queue): the values of the executions sent
    // since the last sync (for the message of one that fails), and what came back so far.
    std::vector<Value> window_values;
    std::size_t window = 0;
    int stream_key_column = -1;
    std::vector<std::int64_t> stream_keys, stream_counts;
    std::exception_ptr stream_error;
};

struct PgConnection final : DriverConnection {
    PgConnection(const URL& url, const EngineOptions& options) : DriverConnection(options.statement_cache_size) {
        // Keywords, not a conninfo string: nothing in the URL can add options of its own.
        std::vector<std::pair<std::string, std::string>> kw;
        if (!url.host.empty()) kw.emplace_back("host", url.host);
        if (url.port) kw.emplace_back("port", std::to_string(*url.port));
        if (!url.username.empty()) kw.emplace_back("user", url.username);
        if (url.password) kw.emplace_back("password", *url.password);
        if (!url.database.empty()) kw.emplace_back("dbname", url.database);
        for (const auto& [k, v] : url.query) kw.emplace_back(k, v);
        kw.emplace_back("fallback_application_name", "athanor");
        kw.emplace_back("client_encoding", "UTF8");
        std::vector<const char*> keys, vals;
        for (const auto& [k, v] : kw) {
            keys.push_back(k.c_str());
            vals.push_back(v.c_str());
        }
        keys.push_back(nullptr);
        vals.push_back(nullptr);
        conn = PQconnectdbParams(keys.data(), vals.data(), 0);
        if (!conn || PQstatus(conn) != CONNECTION_OK) {
            std::string msg = conn ? PQerrorMessage(conn) : "out of memory";
            while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
            if (conn) PQfinish(conn);
            conn = nullptr;
            throw OperationalError("OperationalError", "could not connect to " + url.render() + ": " + msg, "",
                                   "()", "08001", kDriver);
        }
        PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);
        // Dates and times in ISO form whatever the server's default: athanor parses them.
        exec("SET datestyle TO ISO");
    }
    ~PgConnection() override {
        cache.clear();  // the statements go with the connection
        if (conn) PQfinish(conn);
    }

    std::unique_ptr<DriverStatement> prepare(const std::string& sql) override {
        return std::make_unique<PgStatement>(*this, sql);
    }

    PGresult* run_plain(const std::string& sql) {
        settle();
        if (sql.find('\0') != std::string::npos)
            throw ProgrammingError("ProgrammingError", "the SQL text contains a NUL character", sql, "()", "42601",
                                   kDriver);
        // The extended protocol runs exactly one statement: "a; b" is an error, never two.
        PGresult* r = PQexecParams(conn, sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0);
        PgResult guard(r);
        if (!guard.ok()) raise_pg(conn, r, sql, "()");
        guard.r = nullptr;
        return r;
    }

    void exec(const std::string& sql) override {
        settle();
        if (sql == "COMMIT" && PQtransactionStatus(conn) == PQTRANS_INERROR)
            // The server would answer COMMIT with a silent ROLLBACK: say so instead.
            throw InternalError("InternalError",
                                "current transaction is aborted by an earlier error; COMMIT would roll it back "
                                "(call rollback())",
                                sql, "()", "25P02", kDriver);
        PgResult r(run_plain(sql));
    }

    std::vector<std::vector<Value>> query(const std::string& sql) override {
        PgResult r(run_plain(sql));
        std::vector<std::vector<Value>> out;
        const int nf = PQnfields(r.r);
        for (int row = 0; row < PQntuples(r.r); ++row) {
            std::vector<Value> vals;
            for (int i = 0; i < nf; ++i) {
                if (PQgetisnull(r.r, row, i)) {
                    vals.emplace_back();
                    continue;
                }
                const char* p = PQgetvalue(r.r, row, i);
                auto len = static_cast<std::size_t>(PQgetlength(r.r, row, i));
                std::int64_t x;
                switch (PQftype(r.r, i)) {
                    case BOOLOID: vals.emplace_back(std::int64_t{p[0] == 't'}); break;
                    case INT2OID:
                    case INT4OID:
                    case INT8OID:
                    case OIDOID:
                        if (parse_int(p, len, x)) vals.emplace_back(x);
                        else vals.emplace_back(std::string(p, len));
                        break;
                    default: vals.emplace_back(std::string(p, len));
                }
            }
            out.push_back(std::move(vals));
        }
        return out;
    }

    bool in_db_transaction() const noexcept override {
        auto s = PQtransactionStatus(conn);
        return s == PQTRANS_INTRANS || s == PQTRANS_INERROR || s == PQTRANS_ACTIVE;
    }
    bool broken() const noexcept override { return !conn || PQstatus(conn) == CONNECTION_BAD; }

    void after_transaction() noexcept override {
        settle();
        if (broken()) return;
        for (const auto& n : dead) {
            // Our own generated names: "athanor_<n>".
            PGresult* r = PQexec(conn, ("DEALLOCATE " + n).c_str());
            if (r) PQclear(r);
        }
        dead.clear();
    }

    std::int64_t execute_batch(DriverStatement& stmt, std::span<const Value* const> all, std::size_t per,
                               int lastrowid_column, std::vector<std::int64_t>* keys,
                               std::vector<std::int64_t>* counts) override;
    bool pipelines() const noexcept override { return true; }
    void stream(DriverStatement& stmt, std::span<const Value* const> values, int lastrowid_column) override;
    std::int64_t finish_stream(DriverStatement& stmt, std::vector<std::int64_t>* keys,
                               std::vector<std::int64_t>* counts) override;
    /// Reads the results of the executions sent since the last sync into the statement.
    void read_window(PgStatement& st) noexcept;
    /// Ends the open stream, if any, keeping its results and first error in its statement for
    /// finish_stream; every other use of the connection calls this first. Never throws.
    void settle() noexcept;

    PGconn* conn = nullptr;
    PgStatement* streaming = nullptr;  // the statement whose executions are in the pipeline
    std::uint64_t statement_seq = 0;
    std::vector<std::string> dead;  // statements dropped, deallocated between transactions
};

PgStatement::PgStatement(PgConnection& owner, const std::string& text) : conn(owner) {
    sql = text;
    if (text.find('\0') != std::string::npos)
        throw ProgrammingError("ProgrammingError", "the SQL text contains a NUL character", text, "()", "42601",
                               kDriver);
    if (no_statement(text))
        throw ProgrammingError("ProgrammingError", "the SQL text holds no statement", text, "()", "42601", kDriver);
    owner.settle();
    name = "athanor_" + std::to_string(++owner.statement_seq);
    {
        PgResult r(PQprepare(owner.conn, name.c_str(), text.c_str(), 0, nullptr));
        if (!r.ok()) raise_pg(owner.conn, r.r, text, "()");
    }
    PgResult d(PQdescribePrepared(owner.conn, name.c_str()));
    if (!d.ok()) {
        owner.dead.push_back(name);  // prepared, but this object will not exist to drop it
        raise_pg(owner.conn, d.r, text, "()");
    }
    param_count = PQnparams(d.r);
    column_count = PQnfields(d.r);
    auto k = std::make_shared<std::vector<std::string>>();
    for (int i = 0; i < column_count; ++i) {
        k->push_back(PQfname(d.r, i));
        types.push_back(PQftype(d.r, i));
    }
    keys = std::move(k);
}

PgStatement::~PgStatement() {
    if (conn.streaming == this) conn.settle();
    // The server keeps a prepared statement until DEALLOCATE: evicted from the cache or a
    // one-off (the cached one was busy), it is deallocated between transactions.
    try {
        conn.dead.push_back(name);
    } catch (...) {
        // Out of memory: the statement stays on the server until the connection closes.
    }
}

void PgStatement::validate(std::span<const Value* const> values) const {
    for (std::size_t i = 0; i < values.size(); ++i) {
        const std::string* t = values[i]->if_text();
        // Text parameters travel NUL-terminated: an embedded NUL would cut the value short
        // without a word. PostgreSQL text cannot hold one anyway.
        if (t && std::memchr(t->data(), 0, t->size()))
            throw DataError("DataError", "invalid byte sequence for encoding \"UTF8\": 0x00 (parameter " +
                                             std::to_string(i + 1) + ")",
                            sql, repr_params(values), "22021", kDriver);
    }
}

void PgStatement::encode(std::span<const Value* const> values) noexcept {
    const std::size_t n = values.size();
    values_.resize(n);
    lengths_.resize(n);
    formats_.resize(n);
    if (text_.size() < n) text_.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
        const Value& v = *values[i];
        formats_[i] = 0;
        lengths_[i] = 0;
        switch (v.kind()) {
            case Value::Kind::null: values_[i] = nullptr; break;
            case Value::Kind::integer: {
                char buf[24];
                auto [end, ec] = std::to_chars(buf, buf + sizeof buf, *v.if_int());
                (void)ec;
                text_[i].assign(buf, end);
                values_[i] = text_[i].c_str();
                break;
            }
            case Value::Kind::real: {
                double d = *v.if_double();
                if (std::isnan(d)) text_[i] = "NaN";
                else if (std::isinf(d)) text_[i] = d > 0 ? "Infinity" : "-Infinity";
                else {
                    char buf[32];
                    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);
                    (void)ec;
                    text_[i].assign(buf, end);
                }
                values_[i] = text_[i].c_str();
                break;
            }
            case Value::Kind::text: {
                values_[i] = v.if_text()->c_str();
                break;
            }
            case Value::Kind::blob: {
                const Blob& b = *v.if_blob();
                static const char empty = 0;
                values_[i] = b.empty() ? &empty : reinterpret_cast<const char*>(b.data());
                lengths_[i] = static_cast<int>(b.size());
                formats_[i] = 1;
                break;
            }
        }
    }
}

bool PgStatement::take(PGresult* res, std::span<const Value* const> values) {
    result = res;
    row = 0;
    rows = 0;
    changes = 0;
    if (!result.ok()) {
        PGresult* keep = result.r;
        result.r = nullptr;
        PgResult guard(keep);
        raise_pg(conn.conn, keep, sql, repr_params(values));
    }
    const char* tuples = PQcmdTuples(result.r);
    if (tuples && *tuples) parse_int(tuples, std::strlen(tuples), changes);
    rows = PQntuples(result.r);
    if (rows == 0) {
        result = nullptr;
        return false;
    }
    return true;
}

bool PgStatement::execute(std::span<const Value* const> values, bool) {
    if (static_cast<int>(values.size()) != param_count) raise_binding_count(*this, values.size(), values, true);
    validate(values);
    conn.settle();
    encode(values);
    reset();
    PGresult* r = PQexecPrepared(conn.conn, name.c_str(), static_cast<int>(values.size()), values_.data(),
                                 lengths_.data(), formats_.data(), 0);
    return take(r, values);
}

std::int64_t PgConnection::execute_batch(DriverStatement& s, std::span<const Value* const> all, std::size_t per,
                                         int lastrowid_column, std::vector<std::int64_t>* keys,
                                         std::vector<std::int64_t>* counts) {
    auto& stmt = static_cast<PgStatement&>(s);
    settle();
    const std::size_t n = per ? all.size() / per : (all.empty() ? 0 : 1);
    if (n <= 1) return DriverConnection::execute_batch(s, all, per, lastrowid_column, keys, counts);
    if (static_cast<int>(per) != stmt.param_count) raise_binding_count(stmt, per, all.subspan(0, per), true);
    // Every row is checked before the first is sent: a bad value fails the batch, not half of it.
    for (std::size_t g = 0; g < n; ++g) stmt.validate(all.subspan(g * per, per));
    // The executions go through the pipeline as one stream (see stream()).
    for (std::size_t g = 0; g < n; ++g) stream(stmt, all.subspan(g * per, per), lastrowid_column);
    return finish_stream(stmt, keys, counts);
}

void PgConnection::read_window(PgStatement& st) noexcept {
    std::size_t g = 0;
    for (;;) {
        PGresult* r = PQgetResult(conn);
        if (!r) {
            if (PQstatus(conn) == CONNECTION_BAD) break;
            continue;  // the end of one execution's results
        }
        ExecStatusType status = PQresultStatus(r);
        if (status == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            break;
        }
        if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
            std::int64_t c = 0;
            const char* tuples = PQcmdTuples(r);
            if (tuples && *tuples) parse_int(tuples, std::strlen(tuples), c);
            std::int64_t key = 0;
            if (st.stream_key_column >= 0 && PQntuples(r) > 0 && !PQgetisnull(r, 0, st.stream_key_column))
                parse_int(PQgetvalue(r, 0, st.stream_key_column),
                          static_cast<std::size_t>(PQgetlength(r, 0, st.stream_key_column)), key);
            try {
                st.stream_counts.push_back(c);
                st.stream_keys.push_back(key);
            } catch (...) {
                if (!st.stream_error) st.stream_error = std::current_exception();
            }
        } else if (status != PGRES_PIPELINE_ABORTED && !st.stream_error) {
            try {
                const std::size_t per = static_cast<std::size_t>(st.param_count);
                std::vector<const Value*> vals;
                for (std::size_t i = 0; i < per && (g * per + i) < st.window_values.size(); ++i)
                    vals.push_back(&st.window_values[g * per + i]);
                raise_pg(conn, r, st.sql, repr_params(vals));
            } catch (...) {
                st.stream_error = std::current_exception();
            }
        }
        PQclear(r);
        ++g;
    }
    st.window = 0;
}

void PgConnection::settle() noexcept {
    if (!streaming) return;
    PgStatement& st = *streaming;
    streaming = nullptr;
    if (st.window > 0) {
        if (PQpipelineSync(conn) == 1) read_window(st);
        else st.window = 0;
    }
    PQexitPipelineMode(conn);
    if (PQstatus(conn) == CONNECTION_BAD && !st.stream_error) {
        try {
            raise_pg(conn, nullptr, st.sql, "()");
        } catch (...) {
            st.stream_error = std::current_exception();
        }
    }
}

void PgConnection::stream(DriverStatement& s, std::span<const Value* const> values, int lastrowid_column) {
    auto& st = static_cast<PgStatement&>(s);
    if (static_cast<int>(values.size()) != st.param_count) raise_binding_count(st, values.size(), values, true);
    st.validate(values);
    if (streaming != &st) {
        settle();
        if (PQenterPipelineMode(conn) != 1) raise_pg(conn, nullptr, st.sql, "()");
        streaming = &st;
        st.window = 0;
        st.stream_key_column = lastrowid_column;
        st.stream_keys.clear();
        st.stream_counts.clear();
        st.stream_error = nullptr;
        st.reset();
    }
    // Keep the values of this window for the message of an execution that fails.
    const std::size_t per = values.size();
    if (st.window_values.size() < (st.window + 1) * per) st.window_values.resize((st.window + 1) * per);
    for (std::size_t i = 0; i < per; ++i) st.window_values[st.window * per + i] = *values[i];
    st.encode(values);
    if (PQsendQueryPrepared(conn, st.name.c_str(), static_cast<int>(per), st.values_.data(), st.lengths_.data(),
                            st.formats_.data(), 0) != 1) {
        settle();
        raise_pg(conn, nullptr, st.sql, repr_params(values));
    }
    ++st.window;
    // Hand the server work early, so it runs while we prepare the next rows; read a window's
    // results before its results could fill the socket (which would block both sides).
    constexpr std::size_t kFlushEvery = 64, kWindow = 512;
    if (st.window % kFlushEvery == 0) PQflush(conn);
    if (st.window >= kWindow) {
        if (PQpipelineSync(conn) != 1) {
            settle();
            raise_pg(conn, nullptr, st.sql, "()");
        }
        read_window(st);
    }
}

std::int64_t PgConnection::finish_stream(DriverStatement& s, std::vector<std::int64_t>* keys,
                                         std::vector<std::int64_t>* counts) {
    auto& st = static_cast<PgStatement&>(s);
    if (streaming == &st) settle();
    std::exception_ptr error = std::exchange(st.stream_error, nullptr);
    std::int64_t total = 0;
    for (std::int64_t c : st.stream_counts) total += c;
    if (keys) keys->insert(keys->end(), st.stream_keys.begin(), st.stream_keys.end());
    if (counts) counts->insert(counts->end(), st.stream_counts.begin(), st.stream_counts.end());
    st.stream_keys.clear();
    st.stream_counts.clear();
    st.changes = total;
    if (error) std::rethrow_exception(error);
    return total;
}
}  // namespace

std::shared_ptr<DriverConnection> open_postgresql(const URL& url, const EngineOptions& options) {
    return std::make_shared<PgConnection>(url, options);
}

}  // namespace athanor::detail
