// Shared test fixtures: the tutorial's users/addresses schema on an in-memory engine.
#pragma once

#include <athanor/athanor.hpp>

#include <gtest/gtest.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

namespace sa = athanor;

// ---- the backend under test ------------------------------------------------------------------
// One suite, two backends: ctest runs each engine/session/mapping test twice, as is (SQLite in
// memory) and with ATHANOR_TEST_PG naming the file that holds the URL of the throwaway
// PostgreSQL cluster (cmake/pg_cluster.sh). On PostgreSQL each test process gets a schema of
// its own, emptied first, so tests running in parallel never see each other's tables.
namespace testdb {
inline bool postgres() { return std::getenv("ATHANOR_TEST_PG") != nullptr; }

inline std::string schema_name() { return "t" + std::to_string(::getpid()); }

/// Drops this process's schema with all in it and creates it again, empty.
inline void recreate_schema(const std::string& url) {
    auto admin = sa::create_engine(url);
    auto c = admin->connect();
    c.execute(sa::text("DROP SCHEMA IF EXISTS " + schema_name() + " CASCADE"));
    c.execute(sa::text("CREATE SCHEMA " + schema_name()));
    c.commit();
}

inline const std::string& pg_url() {
    static const std::string url = [] {
        std::ifstream in(std::getenv("ATHANOR_TEST_PG"));
        std::string u;
        std::getline(in, u);
        if (u.empty()) throw std::runtime_error("ATHANOR_TEST_PG names no URL file (is the pg_cluster fixture up?)");
        recreate_schema(u);
        return u + "?options=-csearch_path%3D" + schema_name();
    }();
    return url;
}

/// Empties this process's schema (PostgreSQL); nothing to do for a fresh in-memory SQLite.
inline void reset() {
    if (postgres()) recreate_schema(pg_url());
}

/// A fresh, empty database of the backend under test.
inline std::shared_ptr<sa::Engine> engine(sa::EngineOptions options = {}) {
    if (!postgres()) return sa::create_engine("sqlite://", options);
    reset();
    return sa::create_engine(pg_url(), options);
}

/// The placeholder of the n-th (1-based) parameter as the backend's dialect renders it.
inline std::string ph(int n) { return postgres() ? "$" + std::to_string(n) : "?"; }
}  // namespace testdb

/// Skips the rest of a test on PostgreSQL, saying why (SQLite's locking, file databases,
/// SQLite-specific SQL text).
#define SQLITE_ONLY(why)                                              \
    do {                                                              \
        if (testdb::postgres()) GTEST_SKIP() << "SQLite only: " << why; \
    } while (0)

/// The echo of PostgreSQL statements in SQLite's spelling, so one assertion on statement
/// shapes holds on both backends: "$1" placeholders become "?", " \n LIMIT" loses its
/// space, and the RETURNING that
/// fetches a new key (which SQLite reads as lastrowid instead) is taken off. The PostgreSQL
/// text itself is checked, without a server, against SQLAlchemy's in test_compiler.
inline std::string as_sqlite_text(std::string s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '$' && i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
            out += '?';
            while (i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1]))) ++i;
        } else {
            out += s[i];
        }
    }
    // " \n LIMIT" (after ORDER BY or FROM) is written "\n LIMIT" by the SQLite dialect.
    for (std::size_t at; (at = out.find(" \n LIMIT ")) != std::string::npos;) out.erase(at, 1);
    if (out.rfind("INSERT INTO ", 0) == 0) {
        auto r = out.rfind(" RETURNING ");
        if (r != std::string::npos) {
            std::string tail = out.substr(r + 11);
            if (tail.find(' ') == std::string::npos && tail.find(',') == std::string::npos &&
                tail.find('.') != std::string::npos)
                out.erase(r);
        }
    }
    return out;
}

// Captures the SQL and parameter lines of the echo.
/// While alive, the engine logger's messages go here instead of stdout (tests of the SQL).
class SqlLog {
public:
    SqlLog() {
        auto logger = sa::engine_logger();
        saved_ = logger->sinks();
        logger->sinks().clear();
        sink_->set_pattern("\x1e%v");
        logger->sinks().push_back(sink_);
    }
    ~SqlLog() { sa::engine_logger()->sinks() = saved_; }
    std::string text() const { return out_.str(); }
    /// One entry per log message (a message may span several lines).
    std::vector<std::string> lines() const {
        std::vector<std::string> out;
        std::string all = out_.str();
        std::size_t pos = 0;
        while ((pos = all.find('\x1e', pos)) != std::string::npos) {
            std::size_t end = all.find('\x1e', pos + 1);
            std::string msg = all.substr(pos + 1, (end == std::string::npos ? all.size() : end) - pos - 1);
            if (!msg.empty() && msg.back() == '\n') msg.pop_back();
            out.push_back(testdb::postgres() ? as_sqlite_text(msg) : msg);
            pos = pos + 1;
        }
        return out;
    }
    /// Statements only (no parameter lines, no BEGIN/COMMIT).
    std::vector<std::string> statements() const {
        std::vector<std::string> out;
        for (auto& l : lines())
            if (!l.empty() && l[0] != '[' && l != "BEGIN (implicit)" && l != "COMMIT" && l != "ROLLBACK") out.push_back(l);
        return out;
    }
    /// Statements starting with `prefix` (BEGIN/COMMIT and parameter lines not counted).
    std::size_t count(const std::string& prefix) const {
        std::size_t n = 0;
        for (auto& l : statements()) n += l.rfind(prefix, 0) == 0;
        return n;
    }
    std::size_t count_starting(const std::string& prefix) const {
        std::size_t n = 0;
        for (auto& l : lines())
            if (l.rfind(prefix, 0) == 0) ++n;
        return n;
    }
    void clear() { out_.str(""); }

private:
    std::ostringstream out_;
    std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_ = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    std::vector<spdlog::sink_ptr> saved_;
};

struct UsersSchema {
    sa::MetaData metadata;
    sa::Table& users = metadata.table("users",
        sa::Column("id", sa::Integer(), sa::primary_key()),
        sa::Column("name", sa::String(50), sa::nullable(false), sa::unique()),
        sa::Column("fullname", sa::String(50)),
        sa::Column("password", sa::String(12)));
    sa::Table& addresses = metadata.table("addresses",
        sa::Column("id", sa::Integer(), sa::primary_key()),
        sa::Column("email", sa::String(100), sa::nullable(false), sa::index()),
        sa::Column("user_id", sa::Integer(), sa::ForeignKey("users.id", {.ondelete = "CASCADE"})));
};

class MemoryDb : public ::testing::Test, public UsersSchema {
protected:
    std::shared_ptr<sa::Engine> engine = testdb::engine();
    void SetUp() override { metadata.create_all(*engine); }
};

/// Compiles for SQLite without a database (SQLAlchemy's assert_compile).
inline std::string sql(const sa::Executable& stmt) { return stmt.to_string(sa::sqlite_dialect()); }
