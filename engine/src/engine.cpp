#include "engine_impl.hpp"

#include <athanor/core/exc.hpp>

#include <cctype>
#include <cstdio>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace athanor {

// ---- URL ------------------------------------------------------------------------------------

std::string URL::backend() const {
    auto plus = drivername.find('+');
    return plus == std::string::npos ? drivername : drivername.substr(0, plus);
}

std::string URL::render() const {
    std::string s = drivername + "://";
    if (!database.empty()) s += "/" + database;
    char sep = '?';
    for (const auto& [k, v] : query) {
        s += sep + k + "=" + v;
        sep = '&';
    }
    return s;
}

URL make_url(const std::string& text) {
    if (text.find('\0') != std::string::npos)
        throw ArgumentError("Could not parse SQLAlchemy URL: it contains a NUL character");
    auto scheme_end = text.find("://");
    if (scheme_end == std::string::npos || scheme_end == 0)
        throw ArgumentError("Could not parse SQLAlchemy URL from string '" + text + "'");
    URL url;
    url.drivername = text.substr(0, scheme_end);
    for (char c : url.drivername)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '_'))
            throw ArgumentError("Could not parse SQLAlchemy URL from string '" + text + "'");
    if (url.backend() != "sqlite")
        throw ArgumentError("Can't load plugin: athanor.dialects:" + url.backend() +
                            " (URL '" + text + "'; this build supports sqlite)");
    std::string rest = text.substr(scheme_end + 3);
    auto q = rest.find('?');
    if (q != std::string::npos) {
        std::string query = rest.substr(q + 1);
        rest = rest.substr(0, q);
        std::size_t pos = 0;
        while (pos <= query.size()) {
            auto amp = query.find('&', pos);
            std::string kv = query.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
            auto eq = kv.find('=');
            if (kv.empty() || eq == std::string::npos || eq == 0)
                throw ArgumentError("Could not parse query option '" + kv + "' of URL '" + text + "'");
            url.query[kv.substr(0, eq)] = kv.substr(eq + 1);
            if (amp == std::string::npos) break;
            pos = amp + 1;
        }
    }
    if (rest.empty()) return url;  // sqlite:// is an in-memory database
    if (rest.front() != '/')
        throw ArgumentError("Invalid SQLite URL '" + text +
                            "': SQLite takes no host; use sqlite:///relative.db or "
                            "sqlite:////absolute/path.db");
    url.database = rest.substr(1);  // "/:memory:" -> ":memory:", "//abs" -> "/abs"
    return url;
}

// ---- logging --------------------------------------------------------------------------------

namespace {
// %* prints the level as Python's logging does: INFO, DEBUG, WARNING, ERROR.
class UpperLevelFlag : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
        std::string_view name;
        switch (msg.level) {
            case spdlog::level::trace:
            case spdlog::level::debug: name = "DEBUG"; break;
            case spdlog::level::info: name = "INFO"; break;
            case spdlog::level::warn: name = "WARNING"; break;
            case spdlog::level::err: name = "ERROR"; break;
            case spdlog::level::critical: name = "CRITICAL"; break;
            default: name = "NOTSET";
        }
        dest.append(name.data(), name.data() + name.size());
    }
    std::unique_ptr<custom_flag_formatter> clone() const override {
        return std::make_unique<UpperLevelFlag>();
    }
};
}  // namespace

std::unique_ptr<spdlog::formatter> echo_formatter() {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<UpperLevelFlag>('*').set_pattern("%Y-%m-%d %H:%M:%S,%e %* %n %v");
    return formatter;
}

std::shared_ptr<spdlog::logger> engine_logger() {
    static std::mutex m;
    std::lock_guard lock(m);
    if (auto l = spdlog::get("athanor.engine")) return l;
    auto sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
    auto logger = std::make_shared<spdlog::logger>("athanor.engine", sink);
    logger->set_formatter(echo_formatter());
    logger->set_level(spdlog::level::info);
    logger->flush_on(spdlog::level::trace);
    spdlog::register_logger(logger);
    return logger;
}

Echo::Echo(const char* s) {
    std::string v = s ? s : "";
    if (v == "debug") level = 2;
    else if (v == "info" || v == "true" || v == "1") level = 1;
    else if (v.empty() || v == "false" || v == "0") level = 0;
    else throw ArgumentError("echo must be true, false or \"debug\", not '" + v + "'");
}

namespace detail {

void EngineImpl::log(const std::string& msg) const { logger->info(msg); }
void EngineImpl::log_debug(const std::string& msg) const { logger->debug(msg); }

EngineImpl::EngineImpl(URL u, EngineOptions o)
    : url(std::move(u)), options(o), dialect(sqlite_dialect()), logger(engine_logger()),
      echo_level(o.echo.level) {
    if (echo_level >= 2) logger->set_level(spdlog::level::debug);
}

std::shared_ptr<DBConnection> EngineImpl::checkout() {
    std::lock_guard lock(mutex);
    if (url.is_memory()) {
        if (!memory_conn) memory_conn = std::make_shared<DBConnection>(url, options);
        return memory_conn;
    }
    if (!idle.empty()) {
        auto c = std::move(idle.back());
        idle.pop_back();
        return c;
    }
    return std::make_shared<DBConnection>(url, options);
}

void EngineImpl::checkin(std::shared_ptr<DBConnection> c) noexcept {
    if (!c || url.is_memory()) return;
    std::lock_guard lock(mutex);
    if (idle.size() < options.pool_size) idle.push_back(std::move(c));
}

// ---- statements -----------------------------------------------------------------------------

namespace {
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
}  // namespace

PreparedStatement::PreparedStatement(sqlite3* db, const std::string& text) : sql(text) {
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
    if (!stmt) {
        throw ProgrammingError("ProgrammingError", "the SQL text holds no statement", text, "()",
                               SQLITE_MISUSE);
    }
    if (tail && !only_trailing_noise(tail, text.c_str() + text.size())) {
        sqlite3_finalize(stmt);
        stmt = nullptr;
        throw ProgrammingError("ProgrammingError", "You can only execute one statement at a time.", text,
                               "()", SQLITE_MISUSE);
    }
    param_count = sqlite3_bind_parameter_count(stmt);
    column_count = sqlite3_column_count(stmt);
    auto k = std::make_shared<std::vector<std::string>>();
    for (int i = 0; i < column_count; ++i) k->push_back(sqlite3_column_name(stmt, i));
    keys = std::move(k);
}

PreparedStatement::~PreparedStatement() { sqlite3_finalize(stmt); }

namespace {
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
        throw OperationalError("OperationalError", std::string("unable to open database file '") +
                                                       file + "': " + e.what(),
                               "", "()", e.getExtendedErrorCode());
    }
}
}  // namespace

DBConnection::DBConnection(const URL& url, const EngineOptions& options)
    : db(open_database(url, options)), cache_limit(options.statement_cache_size) {
    if (options.wal && !url.is_memory()) exec("PRAGMA journal_mode=WAL");
    if (options.foreign_keys) exec("PRAGMA foreign_keys=ON");
}

PreparedStatement* DBConnection::acquire(const std::string& sql,
                                         std::unique_ptr<PreparedStatement>& owned) {
    auto it = cache.find(sql);
    if (it != cache.end()) {
        if (!it->second->in_use) return it->second.get();
        owned = std::make_unique<PreparedStatement>(handle(), sql);
        return owned.get();
    }
    if (cache.size() >= cache_limit) {
        // Drop the statements not in use; simple and rare (the limit is per distinct SQL).
        for (auto i = cache.begin(); i != cache.end();)
            i = i->second->in_use ? std::next(i) : cache.erase(i);
    }
    if (cache_limit == 0) {
        owned = std::make_unique<PreparedStatement>(handle(), sql);
        return owned.get();
    }
    auto ps = std::make_unique<PreparedStatement>(handle(), sql);
    PreparedStatement* raw = ps.get();
    cache.emplace(sql, std::move(ps));
    return raw;
}

void DBConnection::exec(const std::string& sql) {
    PreparedStatement ps(handle(), sql);
    int rc;
    while ((rc = sqlite3_step(ps.stmt)) == SQLITE_ROW) {
    }
    if (rc != SQLITE_DONE) raise_sqlite(handle(), rc, sql, "()");
}

bool EngineImpl::acquire_lease() {
    std::unique_lock lock(lease_mutex);
    auto me = std::this_thread::get_id();
    if (leased && lease_thread == me) return true;
    auto wait = std::chrono::duration<double>(options.busy_timeout);
    if (!lease_cv.wait_for(lock, wait, [&] { return !leased; }))
        throw OperationalError("OperationalError",
                               "database is locked: another thread's Connection holds the transaction "
                               "of this in-memory engine (waited " + std::to_string(options.busy_timeout) +
                                   " s; commit or close it, or raise EngineOptions::busy_timeout)",
                               "BEGIN", "()", SQLITE_BUSY);
    leased = true;
    lease_thread = me;
    return false;
}

void EngineImpl::release_lease() noexcept {
    {
        std::lock_guard lock(lease_mutex);
        leased = false;
        lease_thread = std::thread::id();
    }
    lease_cv.notify_one();
}

// ---- errors ---------------------------------------------------------------------------------

void raise_sqlite(sqlite3* db, int rc, const std::string& sql, const std::string& params) {
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

// ---- echo formatting ------------------------------------------------------------------------

namespace {
std::string trunc(std::string rep) {
    constexpr std::size_t max_chars = 300;
    if (rep.size() <= max_chars) return rep;
    std::size_t seg = max_chars / 2;
    return rep.substr(0, seg) + " ... (" + std::to_string(rep.size() - max_chars) +
           " characters truncated) ... " + rep.substr(rep.size() - seg);
}
template <class Get>
std::string tuple_repr(std::size_t n, Get get) {
    std::string s = "(";
    for (std::size_t i = 0; i < n; ++i) {
        if (i) s += ", ";
        s += trunc(get(i).repr());
    }
    if (n == 1) s += ",";
    return s + ")";
}
std::string seconds(double s, const char* fmt) {
    char buf[64];
    std::snprintf(buf, sizeof buf, fmt, s);
    return buf;
}
double since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}
// Python's "%.4g".
std::string g4(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.4g", v);
    return buf;
}
}  // namespace

std::string repr_params(std::span<const Value* const> values) {
    return tuple_repr(values.size(), [&](std::size_t i) -> const Value& { return *values[i]; });
}
std::string repr_params(const std::vector<Value>& values) {
    return tuple_repr(values.size(), [&](std::size_t i) -> const Value& { return values[i]; });
}

std::string repr_multi(const std::vector<std::string>& tuples) {
    constexpr std::size_t max_params = 10;
    auto join = [](auto first, auto last) {
        std::string s;
        for (auto it = first; it != last; ++it) {
            if (it != first) s += ", ";
            s += *it;
        }
        return s;
    };
    if (tuples.size() <= max_params) return "(" + join(tuples.begin(), tuples.end()) + ")";
    return "(" + join(tuples.begin(), tuples.begin() + (max_params - 2)) + "  ... displaying " +
           std::to_string(max_params) + " of " + std::to_string(tuples.size()) +
           " total bound parameter sets ...  " + join(tuples.end() - 2, tuples.end()) + ")";
}

std::string stats_generated(std::chrono::steady_clock::time_point t) {
    return seconds(since(t), "[generated in %.5fs]");
}
std::string stats_cached(std::chrono::steady_clock::time_point t) {
    return "[cached since " + g4(since(t)) + "s ago]";
}
std::string stats_no_key(std::chrono::steady_clock::time_point t) {
    return seconds(since(t), "[no key %.5fs]");
}

}  // namespace detail

// ---- Engine ---------------------------------------------------------------------------------

Engine::Engine(URL url, EngineOptions options)
    : impl_(std::make_shared<detail::EngineImpl>(std::move(url), options)) {
    if (!(options.busy_timeout >= 0) || options.busy_timeout > 1e6)
        throw ArgumentError("busy_timeout must be between 0 and 1e6 seconds");
    if (options.begin != "DEFERRED" && options.begin != "IMMEDIATE" && options.begin != "EXCLUSIVE")
        throw ArgumentError("EngineOptions::begin must be \"DEFERRED\", \"IMMEDIATE\" or \"EXCLUSIVE\", not '" +
                            options.begin + "'");
}
Engine::~Engine() = default;

Connection Engine::connect() {
    return Connection(std::make_shared<detail::ConnectionImpl>(impl_, impl_->checkout()));
}
Connection Engine::begin() {
    Connection c = connect();
    c.impl()->autobegin();
    return c;
}
const URL& Engine::url() const noexcept { return impl_->url; }
const EngineOptions& Engine::options() const noexcept { return impl_->options; }
const Dialect& Engine::dialect() const noexcept { return impl_->dialect; }
void Engine::dispose() {
    std::lock_guard lock(impl_->mutex);
    impl_->idle.clear();
}

void Engine::run_schema_work(const std::function<void(SchemaConnection&)>& work) {
    Connection c = connect();
    c.impl()->autobegin();
    work(*c.impl());
    c.commit();
}

std::shared_ptr<Engine> create_engine(const std::string& url, EngineOptions options) {
    return std::make_shared<Engine>(make_url(url), options);
}

const Dialect& sqlite_dialect() {
    static const SQLiteDialect d;
    return d;
}

}  // namespace athanor
