#include "engine_impl.hpp"
#include <athanor/core/detail/hot.hpp>

#include <athanor/engine/postgresql_dialect.hpp>
#include <athanor/engine/sqlite_dialect.hpp>

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

namespace {
// The characters that would end a URL part, %-escaped (server URLs only; a SQLite path is
// taken as written).
std::string quote_part(const std::string& s, bool server) {
    if (!server) return s;
    std::string out;
    for (char c : s) {
        if (c == '%' || c == '?' || c == '/' || c == '@' || c == ':' || c == '&' || c == '=' || c == '#') {
            char buf[4];
            std::snprintf(buf, sizeof buf, "%%%02X", static_cast<unsigned char>(c));
            out += buf;
        } else {
            out += c;
        }
    }
    return out;
}
}  // namespace

std::string URL::render(bool hide_password) const {
    const bool server = backend() != "sqlite";
    std::string s = drivername + "://";
    if (!username.empty() || password) {
        s += quote_part(username, server);
        if (password) s += ":" + (hide_password ? std::string("***") : quote_part(*password, server));
        s += "@";
    }
    s += host.find(':') != std::string::npos ? "[" + host + "]" : host;
    if (port) s += ":" + std::to_string(*port);
    if (!database.empty()) s += "/" + quote_part(database, server);
    char sep = '?';
    for (const auto& [k, v] : query) {
        s += sep + quote_part(k, server) + "=" + quote_part(v, server);
        sep = '&';
    }
    return s;
}

namespace {
// %XX escapes in the user, password, database and query values, as SQLAlchemy unquotes them.
std::string unquote(const std::string& s, const std::string& url) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out += s[i];
            continue;
        }
        auto hex = [](char c) -> int {
            if (c >= '0' && c <= '9') return c - '0';
            if (c >= 'a' && c <= 'f') return c - 'a' + 10;
            if (c >= 'A' && c <= 'F') return c - 'A' + 10;
            return -1;
        };
        int hi = i + 2 < s.size() ? hex(s[i + 1]) : -1, lo = i + 2 < s.size() ? hex(s[i + 2]) : -1;
        if (hi < 0 || lo < 0) throw ArgumentError("Could not parse SQLAlchemy URL '" + url + "': bad %-escape");
        char c = static_cast<char>(hi * 16 + lo);
        if (c == '\0') throw ArgumentError("Could not parse SQLAlchemy URL: it contains a NUL character");
        out += c;
        i += 2;
    }
    return out;
}
}  // namespace

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
    const std::string backend = url.backend();
    if (backend == "postgres")
        throw ArgumentError("Can't load plugin: athanor.dialects:postgres (URL scheme 'postgres' is not "
                            "accepted, as in SQLAlchemy 1.4+; use 'postgresql://')");
    if (backend != "sqlite" && backend != "postgresql")
        throw ArgumentError("Can't load plugin: athanor.dialects:" + backend + " (URL '" + text +
                            "'; this build supports sqlite and postgresql)");
    if (backend == "postgresql" && url.drivername != "postgresql" && url.drivername != "postgresql+libpq")
        throw ArgumentError("Can't load plugin: athanor.dialects:" + url.drivername +
                            " (the PostgreSQL driver is libpq: postgresql:// or postgresql+libpq://)");
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
            url.query[unquote(kv.substr(0, eq), text)] = unquote(kv.substr(eq + 1), text);
            if (amp == std::string::npos) break;
            pos = amp + 1;
        }
    }
    if (backend == "sqlite") {
        if (rest.empty()) return url;  // sqlite:// is an in-memory database
        if (rest.front() != '/')
            throw ArgumentError("Invalid SQLite URL '" + text +
                                "': SQLite takes no host; use sqlite:///relative.db or "
                                "sqlite:////absolute/path.db");
        url.database = rest.substr(1);  // "/:memory:" -> ":memory:", "//abs" -> "/abs"
        return url;
    }
    // postgresql://user:password@host:port/database
    auto slash = rest.find('/');
    std::string authority = rest.substr(0, slash);
    if (slash != std::string::npos) url.database = unquote(rest.substr(slash + 1), text);
    if (auto at = authority.rfind('@'); at != std::string::npos) {
        std::string userinfo = authority.substr(0, at);
        authority = authority.substr(at + 1);
        auto colon = userinfo.find(':');
        url.username = unquote(userinfo.substr(0, colon), text);
        if (colon != std::string::npos) url.password = unquote(userinfo.substr(colon + 1), text);
    }
    std::string port;
    if (!authority.empty() && authority.front() == '[') {  // [::1]:5432
        auto close = authority.find(']');
        if (close == std::string::npos) throw ArgumentError("Could not parse SQLAlchemy URL from string '" + text + "'");
        url.host = authority.substr(1, close - 1);
        if (close + 1 < authority.size()) {
            if (authority[close + 1] != ':') throw ArgumentError("Could not parse SQLAlchemy URL from string '" + text + "'");
            port = authority.substr(close + 2);
        }
    } else {
        auto colon = authority.rfind(':');
        url.host = authority.substr(0, colon);
        if (colon != std::string::npos) port = authority.substr(colon + 1);
    }
    if (!port.empty() || authority.find(':') != std::string::npos) {
        bool ok = !port.empty() && port.size() <= 5;
        for (char c : port) ok = ok && std::isdigit(static_cast<unsigned char>(c));
        if (!ok || std::stoi(port) < 1 || std::stoi(port) > 65535)
            throw ArgumentError("Invalid port '" + port + "' in URL '" + url.render() + "' (1 to 65535)");
        url.port = std::stoi(port);
    }
    for (char c : url.host)
        if (std::isspace(static_cast<unsigned char>(c)) || c == '/' || c == '@')
            throw ArgumentError("Invalid host '" + url.host + "' in URL '" + url.render() + "'");
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
    : url(std::move(u)), options(o),
      dialect(url.backend() == "postgresql" ? postgresql_dialect() : sqlite_dialect()),
      memory(url.backend() == "sqlite" && url.is_memory()), logger(engine_logger()), echo_level(o.echo.level) {
    if (echo_level >= 2) logger->set_level(spdlog::level::debug);
    if (url.backend() == "postgresql") {
        begin_sql = options.isolation_level.empty() ? "BEGIN" : "BEGIN ISOLATION LEVEL " + options.isolation_level;
    } else {
        begin_sql = options.begin == "DEFERRED" ? std::string("BEGIN") : "BEGIN " + options.begin;
    }
}

std::shared_ptr<DriverConnection> EngineImpl::open() const {
    if (url.backend() == "postgresql") return open_postgresql(url, options);
    return open_sqlite(url, options);
}

std::shared_ptr<DriverConnection> EngineImpl::checkout() {
    std::unique_lock lock(mutex);
    if (memory) {
        if (!memory_conn) memory_conn = open();
        return memory_conn;
    }
    while (!idle.empty()) {
        auto c = std::move(idle.back());
        idle.pop_back();
        if (!c->broken()) return c;
    }
    lock.unlock();  // connecting to a server takes a round trip or more: not under the lock
    return open();
}

void EngineImpl::checkin(std::shared_ptr<DriverConnection> c) noexcept {
    if (!c || memory) return;
    if (c->broken()) return;  // a lost connection is discarded, never handed out again
    std::lock_guard lock(mutex);
    if (idle.size() < options.pool_size) idle.push_back(std::move(c));
}

DriverStatement* DriverConnection::acquire(const std::string& sql, std::unique_ptr<DriverStatement>& owned) {
    auto it = cache.find(sql);
    if (it != cache.end()) {
        if (!it->second->in_use) return it->second.get();
        owned = prepare(sql);
        return owned.get();
    }
    if (cache.size() >= cache_limit) {
        // Drop the statements not in use; simple and rare (the limit is per distinct SQL).
        for (auto i = cache.begin(); i != cache.end();)
            i = i->second->in_use ? std::next(i) : cache.erase(i);
    }
    if (cache_limit == 0) {
        owned = prepare(sql);
        return owned.get();
    }
    auto ps = prepare(sql);
    DriverStatement* raw = ps.get();
    cache.emplace(sql, std::move(ps));
    return raw;
}

ATHANOR_HOT std::int64_t DriverConnection::execute_batch(DriverStatement& stmt, std::span<const Value* const> all,
                                             std::size_t per, int lastrowid_column,
                                             std::vector<std::int64_t>* keys, std::vector<std::int64_t>* counts) {
    std::int64_t total = 0;
    const std::size_t n = per ? all.size() / per : 0;
    for (std::size_t g = 0; g < n; ++g) {
        bool row = stmt.execute(all.subspan(g * per, per), false);
        std::int64_t key = stmt.lastrowid();
        if (row) {
            if (lastrowid_column >= 0) key = stmt.int_at(lastrowid_column);
            while (stmt.step()) {
            }
        }
        total += stmt.rowcount();
        if (keys) keys->push_back(key);
        if (counts) counts->push_back(stmt.rowcount());
    }
    return total;
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
                               "BEGIN", "()", 5 /* SQLITE_BUSY */);
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
    const auto& iso = options.isolation_level;
    if (!iso.empty() && iso != "READ COMMITTED" && iso != "REPEATABLE READ" && iso != "SERIALIZABLE" &&
        iso != "READ UNCOMMITTED")
        throw ArgumentError("EngineOptions::isolation_level must be \"READ COMMITTED\", \"REPEATABLE READ\" or "
                            "\"SERIALIZABLE\", not '" + iso + "'");
    if (!iso.empty() && impl_->url.backend() == "sqlite" && iso != "SERIALIZABLE")
        throw ArgumentError("SQLite transactions are always SERIALIZABLE; isolation_level '" + iso +
                            "' is not available");
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

namespace detail {
bool sqlite_enforces_foreign_keys(DriverConnection& db) {
    auto rows = db.query("PRAGMA foreign_keys");
    return !rows.empty() && !rows[0].empty() && rows[0][0].kind() == Value::Kind::integer && rows[0][0].as<std::int64_t>() != 0;
}
}  // namespace detail

void Engine::run_schema_work(const std::function<void(SchemaConnection&)>& work, const SchemaWorkOptions& options) {
    if (!options.foreign_keys_off || dialect().name() != "sqlite") return run_schema_work(work);
    Connection c = connect();
    auto& db = *c.impl()->db;
    // PRAGMA foreign_keys is a no-op inside a transaction: it is switched before BEGIN and
    // back after COMMIT / ROLLBACK, on this connection only.
    const bool enforced = detail::sqlite_enforces_foreign_keys(db);
    if (enforced) {
        if (db.in_db_transaction())
            throw MigrationError("foreign keys cannot be switched off for this migration while another "
                                 "transaction is open on the engine's shared connection");
        db.exec("PRAGMA foreign_keys=OFF");
    }
    auto restore = [&]() noexcept {
        if (!enforced) return;
        try {
            db.exec("PRAGMA foreign_keys=ON");
        } catch (...) {
        }
    };
    try {
        c.impl()->autobegin();
        work(*c.impl());
        c.commit();
    } catch (...) {
        try {
            c.rollback();
        } catch (...) {
        }
        restore();
        throw;
    }
    restore();
}

std::shared_ptr<Engine> create_engine(const std::string& url, EngineOptions options) {
    return std::make_shared<Engine>(make_url(url), options);
}

const Dialect& sqlite_dialect() {
    static const SQLiteDialect d;
    return d;
}

const Dialect& postgresql_dialect() {
    static const PGDialect d;
    return d;
}

}  // namespace athanor
