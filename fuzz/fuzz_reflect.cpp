// Reflection of a database built from fuzzed DDL: the DDL runs on a scratch SQLite database
// (only CREATE TABLE / CREATE INDEX / CREATE VIEW and INSERT are allowed there), which is
// written to a file; MetaData::reflect reads it back (or raises an athanor::Error), and what it
// reflected can be created again on an empty database.
#include <athanor/athanor.hpp>

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>

namespace sa = athanor;

namespace {
int only_schema(void*, int action, const char*, const char*, const char*, const char*) {
    switch (action) {
        case SQLITE_CREATE_TABLE:
        case SQLITE_CREATE_INDEX:
        case SQLITE_CREATE_VIEW:
        case SQLITE_INSERT:
        case SQLITE_READ:
        case SQLITE_SELECT:
        case SQLITE_FUNCTION:
        case SQLITE_UPDATE:  // sqlite_master is updated by CREATE
            return SQLITE_OK;
        default: return SQLITE_DENY;
    }
}

const std::string& db_path() {
    static const std::string p = [] {
        const char* dir = std::getenv("TMPDIR");
        return std::string(dir ? dir : "/tmp") + "/athanor_fuzz_reflect_" + std::to_string(::getpid()) + ".db";
    }();
    return p;
}

// Builds the scratch database; false when SQLite refused the DDL entirely.
bool build(const std::string& ddl) {
    std::remove(db_path().c_str());
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(db_path().c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK) {
        sqlite3_close(db);
        return false;
    }
    sqlite3_set_authorizer(db, only_schema, nullptr);
    sqlite3_limit(db, SQLITE_LIMIT_LENGTH, 1 << 16);
    sqlite3_exec(db, ddl.c_str(), nullptr, nullptr, nullptr);  // the fuzzer's own scratch database
    sqlite3_close(db);
    return true;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size > 4096) return 0;
    std::string ddl(reinterpret_cast<const char*>(data), size);
    if (ddl.find('\0') != std::string::npos || !build(ddl)) return 0;
    sa::MetaData md;
    try {
        auto engine = sa::create_engine("sqlite:///" + db_path());
        sa::engine_logger()->set_level(spdlog::level::off);  // reflection warnings are expected here
        md.reflect(*engine);
    } catch (const sa::Error&) {
        return 0;
    }
    auto fresh = sa::create_engine("sqlite://");
    try {
        md.create_all(*fresh);
    } catch (const sa::CircularDependencyError&) {
        // Tables that refer to each other cannot be created one by one (SQLAlchemy: the same).
    } catch (const sa::Error& e) {
        std::fprintf(stderr, "reflected schema could not be created again: %s\n", e.what());
        std::abort();
    }
    return 0;
}
